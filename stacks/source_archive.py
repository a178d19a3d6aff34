"""A reproducible tar.gz of the packaging job's source, for `sagemaker_submit_directory`.

The same files give the same bytes (sorted entries, zeroed times and owners,
no gzip timestamp), so the same CDK asset hash and no spurious job on deploy.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pathlib
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


def build(folder: pathlib.Path) -> tuple[pathlib.Path, str]:
    """Write the archive to a content-addressed file; return it and its sha256."""
    data = archive_bytes(folder)
    digest = hashlib.sha256(data).hexdigest()
    target = pathlib.Path(tempfile.gettempdir()) / "tfhub-packaging-source" / f"{digest}.tar.gz"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(target)
    return target, digest
