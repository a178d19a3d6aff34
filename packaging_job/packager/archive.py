"""Streaming, safe extraction of a hub compressed archive (tar.gz)."""

from __future__ import annotations

import tarfile
import zlib
from typing import IO

from .errors import PackagingError


def extract(stream: IO[bytes], destination: str, origin: str) -> None:
    """Extract a tar.gz stream member by member with tarfile's `data` filter.

    The filter refuses `..`, links that point outside `destination`, and
    device files; absolute paths, which it would quietly make relative, are
    refused too: a hub archive never holds one. Stream mode (`r|gz`) reads
    forward only, so memory stays flat in the archive's size.
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as archive:
            archive.extractall(destination, filter=_strict_data_filter)
    except tarfile.FilterError as error:
        raise PackagingError(
            f"Refusing unsafe archive member from {origin}: {error}. A hub archive holds "
            "only relative paths inside the model folder."
        ) from error
    except (tarfile.ReadError, EOFError, zlib.error, OSError) as error:
        raise PackagingError(
            f"The archive from {origin} is truncated or corrupt ({error}). Check that the "
            "handle serves a hub compressed archive (?tf-hub-format=compressed) and retry."
        ) from error


def _strict_data_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    if member.name.startswith(("/", "\\")):
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, path)
