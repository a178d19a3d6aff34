"""Streaming, safe extraction of a hub compressed archive (tar.gz), within limits.

Only regular files and folders are extracted: links (which `tarfile`'s `data`
filter admits when they stay inside the destination, but which a later move
can turn outward), devices, absolute or `..` paths and names that are not
UTF-8 are refused. The sizes are bounded as the archive streams in
(downloaded bytes, extracted bytes, the ratio of the two, which a
decompression bomb breaks, and the entries, folders as well as files), the
disk is checked before each file (`Budget`, which bounds a folder handle's
copy too), and the archive must end as a tar archive ends: a header that is
not a header after some members, data after the end-of-archive marker, or a
stream cut short, is a corrupt archive, never a partial model. Nor may it
hold what tar programs read differently: a global pax header with a field
that places or names files (with a global `size`, tarfile and GNU tar find
different files in one archive; a `comment` such as `git archive` writes is
fine), a sparse or
contiguous file (`members`, which a promotion's reading of a model.tar.gz
shares).
"""

from __future__ import annotations

import errno
import gzip
import http.client
import os
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, cast

from .errors import PackagingError

_MIB = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
# Keep this much of the decompressed stream: tarfile reads ahead in records.
_TAIL = 4 * tarfile.RECORDSIZE
# Global pax fields that neither place nor name a member's bytes (POSIX.1-2008,
# pax, "pax Extended Header"): readers ignore `comment`, and times and owners
# are dropped by extraction anyway. `git archive` writes a global `comment`.
_DESCRIPTIVE_GLOBAL_FIELDS = frozenset({"comment", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname"})
# A small download may expand to ratio x this much before the ratio counts.
_RATIO_FLOOR = _MIB


@dataclass(frozen=True)
class Limits:
    """What an archive may hold; the defaults fit hub models with a wide margin."""

    download_mb: int = 20 * 1024
    model_mb: int = 40 * 1024
    files: int = 100_000
    ratio: int = 100
    # Free disk space kept beyond the model itself.
    spare_mb: int = 512


class _Counted:
    """Counts the compressed bytes read, and stops past the download limit."""

    def __init__(self, stream: IO[bytes], limit: int, origin: str) -> None:
        self.stream, self.limit, self.origin, self.read_bytes = stream, limit, origin, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.read_bytes += len(chunk)
        if self.read_bytes > self.limit:
            raise PackagingError(
                f"The archive from {self.origin} is larger than {self.limit // _MIB} MB "
                "(packaging.limits.download_mb): raise the limit if the model really is that large."
            )
        return chunk


class _Tail:
    """The decompressed stream, remembering its last bytes and its length."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.position, self.tail = stream, 0, b""

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.position += len(chunk)
        self.tail = (self.tail + chunk)[-_TAIL:]
        return chunk

    def since(self, offset: int) -> bytes | None:
        """The stream from `offset` to what was read last, if still remembered."""
        start = len(self.tail) - (self.position - offset)
        return self.tail[start:] if start >= 0 else None


def extract(stream: IO[bytes], destination: str, origin: str, limits: Limits = Limits()) -> None:
    """Extract a tar.gz stream member by member; memory stays flat in the archive's size."""
    counted = _Counted(stream, limits.download_mb * _MIB, origin)
    budget = Budget(limits, destination, origin)
    folders: set[PurePosixPath] = set()
    last = "the start"
    try:
        for archive, member in members(cast(IO[bytes], counted)):
            _refuse_unsafe(member, origin)
            _admit(budget, member, folders)
            if member.isfile():
                _within_ratio(limits, budget.total, counted.read_bytes, origin)
            archive.extract(member, destination, filter=tarfile.data_filter)
            last = member.name
    except BadEnd as error:
        raise PackagingError(f"The archive from {origin} is corrupt after {last}: {error}.") from error
    except NotReadAlike as error:
        raise PackagingError(
            f"Refusing the archive from {origin}: {error}. A hub archive may hold only plain files and "
            "folders, which every tar program reads alike: repack the model so (Python's tarfile writes such "
            "archives) and point the handle at that copy."
        ) from error
    except tarfile.FilterError as error:
        raise PackagingError(
            f"Refusing unsafe archive member from {origin}: {error}. A hub archive holds "
            "only relative paths inside the model folder."
        ) from error
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise disk_full(origin) from error
        raise _corrupt(origin, last, error) from error
    except (tarfile.TarError, EOFError, zlib.error, http.client.HTTPException) as error:
        raise _corrupt(origin, last, error) from error


def _admit(budget: Budget, member: tarfile.TarInfo, folders: set[PurePosixPath]) -> None:
    """Count `member` against the budget, and each folder it creates: a folder costs an
    inode as a file does (0 bytes, one entry), whether the archive lists it or only
    implies it by a deeper member's path (`a/b/c/f` makes three)."""
    path = PurePosixPath(member.name)
    for folder in [*reversed(path.parents[:-1]), *([path] if member.isdir() else [])]:
        if folder not in folders:
            folders.add(folder)
            budget.admit(0)
    if not member.isdir():
        budget.admit(member.size)


class BadEnd(tarfile.TarError):
    """A tar.gz that does not end as a tar archive ends; the message says how."""


class NotReadAlike(tarfile.TarError):
    """A tar.gz holding what tar programs read differently; the message says what."""


def members(compressed: IO[bytes]) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Each member of the tar.gz stream `compressed`, with the archive to read it from
    (before the next member); then `BadEnd` unless the archive ended as one ends.

    tarfile's member loop stops quietly at the first block that is not a header,
    where GNU tar reports an error and goes on to find the members behind it: what
    stops the loop must be the end-of-archive block, only zero padding may follow
    it, and the gzip stream must be whole (reading it to its end checks gzip's own
    trailer), so no member can hide behind a broken header or after the end.
    `NotReadAlike` stops it at a member, or a header, that another tar program
    would read otherwise (links, devices and the like are the callers' to refuse)."""
    tail = _Tail(cast(IO[bytes], gzip.GzipFile(fileobj=compressed, mode="rb")))
    with tarfile.open(fileobj=cast(IO[bytes], tail), mode="r|") as archive:
        for member in archive:
            _require_read_alike(archive, member)
            yield archive, member
        # tarfile reads ahead in records: what it read past the end counts too.
        rest = tail.since(archive.offset)
    if rest is None or len(rest) < _BLOCK:
        raise BadEnd("it ends without an end-of-archive marker")
    if any(rest[:_BLOCK]):
        raise BadEnd("a broken header follows")
    if any(rest):
        raise BadEnd("data follows its end-of-archive marker")
    while chunk := tail.read(_MIB):
        if any(chunk):
            raise BadEnd("data follows its end-of-archive marker")


def _require_read_alike(archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
    # tarfile consumes a global header ('g') itself: all that shows of it is the
    # archive's pax_headers. Which of its fields apply to which member is where tar
    # programs part ways (POSIX.1-2008, pax, "pax Header Block"): with a global
    # `size`, tarfile reads one file where GNU tar reads that file and a second one.
    placing = sorted(set(archive.pax_headers) - _DESCRIPTIVE_GLOBAL_FIELDS)
    if placing:
        raise NotReadAlike(
            f"it has a global pax header (type 'g') setting {', '.join(placing)}, which tar programs apply differently"
        )
    if not member.isfile():
        return
    # tarfile counts these as regular files: a sparse one ('S', or pax GNU.sparse.*
    # fields, which tarfile may not read as GNU tar does) is not its stored bytes,
    # and a contiguous one ('7') is a plain file to some programs only.
    sparse = member.issparse() or any(field.startswith("GNU.sparse.") for field in member.pax_headers)
    if sparse or member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        kind = "a sparse file" if sparse else f"a tar member of type {member.type.decode(errors='replace')!r}"
        raise NotReadAlike(f"{member.name!r} is {kind}, not a plain file")


def _refuse_unsafe(member: tarfile.TarInfo, origin: str) -> None:
    if member.name.startswith(("/", "\\")):
        raise tarfile.AbsolutePathError(member)
    require_utf8_name(member.name, origin)
    if not (member.isfile() or member.isdir()):
        kind = "a link" if member.issym() or member.islnk() else "not a file or folder"
        raise PackagingError(
            f"Refusing {member.name!r} from {origin}: it is {kind}. A hub archive holds only files and "
            "folders; a link could make what serves differ from what was checked."
        )


def require_utf8_name(name: str, origin: str) -> None:
    """Refuse a path whose bytes are not UTF-8 (decoded with surrogate escapes): the
    manifest names every file in UTF-8 JSON, which such a name cannot be written in."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise PackagingError(
            f"Refusing {os.fsencode(name)!r} from {origin}: its name is not UTF-8 text, which the manifest "
            "names every file in. Rename it in UTF-8 and repackage the model."
        ) from None


class Budget:
    """The entries (files and folders) and bytes a model has taken so far, checked against
    the limits and the free disk before each is written (extracted, copied or downloaded)."""

    def __init__(self, limits: Limits, destination: str, origin: str) -> None:
        self.limits, self.destination, self.origin = limits, destination, origin
        self.files = self.total = 0

    def admit(self, size: int) -> None:
        self.files, self.total = self.files + 1, self.total + size
        if self.files > self.limits.files:
            raise PackagingError(
                f"The model from {self.origin} holds more than {self.limits.files} files and folders "
                "(packaging.limits.files, which counts both): raise the limit if the model really has that many."
            )
        if self.total > self.limits.model_mb * _MIB:
            raise PackagingError(
                f"The model from {self.origin} is larger than {self.limits.model_mb} MB "
                "(packaging.limits.model_mb): raise the limit if the model really is that large."
            )
        if shutil.disk_usage(self.destination).free < size + self.limits.spare_mb * _MIB:
            raise disk_full(self.origin)


def _within_ratio(limits: Limits, total: int, downloaded: int, origin: str) -> None:
    if total > limits.ratio * max(downloaded, _RATIO_FLOOR):
        raise PackagingError(
            f"The archive from {origin} expands more than {limits.ratio} times its size "
            "(packaging.limits.ratio): that is a decompression bomb, not a model."
        )


def disk_full(origin: str) -> PackagingError:
    return PackagingError(
        f"Not enough disk space for the model from {origin}: raise packaging.volume_gb "
        "(the training volume holds the archive's contents and the packaged copy)."
    )


def _corrupt(origin: str, last: str, error: BaseException) -> PackagingError:
    return PackagingError(
        f"The archive from {origin} is truncated or corrupt after {last} ({error}). Check that the "
        "handle serves a hub compressed archive (?tf-hub-format=compressed) and retry."
    )
