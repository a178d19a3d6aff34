"""The artifact's manifest: per-file sha256 and sizes, a tree digest, signatures.

The tree digest covers every byte and path the serving container reads: each
file under the artifact's root, named from the root (`<name>/<version>/...`
and `code/...`, so the layout and the inference code are in it), everything
but `manifest.json` itself, which the container does not read. Digest
version 2; version 1 covered only the version folder.
"""

from __future__ import annotations

import hashlib
import os

_CHUNK = 1 << 20
DIGEST_VERSION = 2
MANIFEST_NAME = "manifest.json"


def file_digests(root: str) -> list[dict]:
    """Every file under `root` but the manifest, sorted by relative path, hashed in 1 MiB chunks."""
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if folder == root and name == MANIFEST_NAME:
                continue
            path = os.path.join(folder, name)
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
            entries.append(
                {
                    "path": os.path.relpath(path, root).replace(os.sep, "/"),
                    "sha256": digest.hexdigest(),
                    "size": os.path.getsize(path),
                }
            )
    return sorted(entries, key=lambda entry: entry["path"])


def tree_digest(entries: list[dict]) -> str:
    """One sha256 over (path, size, sha256) of every file: equal trees, equal digests."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry['sha256']}  {entry['size']}  {entry['path']}\n".encode())
    return digest.hexdigest()
