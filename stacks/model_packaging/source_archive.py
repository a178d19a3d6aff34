"""A reproducible tar.gz of the packaging job's source, for `sagemaker_submit_directory`.

The same files give the same bytes (sorted entries, zeroed times and owners,
no gzip timestamp), so the same CDK asset hash and no spurious job on deploy.
The archive is cached under the temp folder in a folder only this user may
write, and a cached file is used only if it still has the digest it is named by:
whatever else is there is rewritten, never shipped as the job's code.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pathlib
import stat
import tarfile
import tempfile

_SKIP_DIRS = {"__pycache__", ".pytest_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


def source_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not _SKIP_DIRS.intersection(path.relative_to(folder).parts)
        and not path.name.endswith(_SKIP_SUFFIXES)
    )


def archive_bytes(folder: pathlib.Path) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.USTAR_FORMAT) as archive:
            for path in source_files(folder):
                info = tarfile.TarInfo(path.relative_to(folder).as_posix())
                data = path.read_bytes()
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build(folder: pathlib.Path, cache_root: pathlib.Path | None = None) -> tuple[pathlib.Path, str]:
    """Write the archive to a content-addressed file; return it and its sha256."""
    data = archive_bytes(folder)
    digest = hashlib.sha256(data).hexdigest()
    target = _private_cache(pathlib.Path(cache_root or tempfile.gettempdir())) / f"{digest}.tar.gz"
    if target.is_symlink() or not target.is_file() or hashlib.sha256(target.read_bytes()).hexdigest() != digest:
        partial = target.with_name(f"{digest}.{os.getpid()}.partial")
        partial.write_bytes(data)
        partial.replace(target)
    return target, digest


def _private_cache(root: pathlib.Path) -> pathlib.Path:
    """`<root>/tfhub-packaging-source-<uid>`, which must be this user's and closed to others."""
    path = root / f"tfhub-packaging-source-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RuntimeError(
            f"{path} is not a folder only you can write (a link, another user's, or open to others): "
            "remove it and synthesize again."
        )
    return path
