"""One model artifact in S3, in either of the forms SageMaker serves.

- a prefix ending in `/` (ModelDataSource, instances): one object per file;
- a `model.tar.gz` (ModelDataUrl, serverless and instances): one archive.

Both hold `<name>/<version>/...`, `manifest.json` and optionally `code/`. This
module reads either form as a stream of files (`artifact_copy.py` writes
them). Links, devices, absolute or `..` paths and zero-byte "folder" objects
are refused: SageMaker would either fail on them (S3ModelDataSource) or place
something other than what the manifest lists. An archive must end as a tar
archive ends, as a hub archive must (`packaging_job/packager/archive.py`): a
file hidden behind a broken header is found by extractors that read on. Nor
may it hold what tar programs read differently (a global pax header that places
or names files, a sparse file), where SageMaker's extraction could find files
this reading does not.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, cast

from packaging_job.packager.archive import BadEnd, NotReadAlike, members
from packaging_job.packager.manifest import MANIFEST_NAME as MANIFEST

_CHUNK = 1 << 20


class ArtifactError(Exception):
    """The artifact is missing, unreadable or unsafe; the message says which."""


@dataclass(frozen=True)
class File:
    path: str  # relative to the artifact's root
    size: int
    stream: IO[bytes]


class _Forward:
    """A member of an archive read as a stream: forward only. (tarfile's member
    object claims to be seekable and then fails to seek, which misleads uploads.)"""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def is_archive(uri: str) -> bool:
    return uri.endswith(".tar.gz")


def safe_path(name: str, where: str) -> str:
    path = name.removeprefix("./")
    parts = path.split("/")
    # Control characters too: a newline in a path would make the tree digest's
    # one line per file ambiguous.
    unsafe = any(ord(c) < 0x20 or ord(c) == 0x7F for c in path)
    if not path or unsafe or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ArtifactError(f"{where} holds an unsafe path {name!r}.")
    return path


def files(s3, uri: str) -> Iterator[File]:
    """Every file of the artifact at `uri`, in its stored order, each readable once."""
    bucket, key = split(uri)
    if is_archive(uri):
        body = _get(s3, bucket, key, uri)
        last = "its start"
        try:
            for archive, member in members(body):
                last = repr(member.name)
                if member.isdir():
                    continue
                if not member.isfile():
                    raise ArtifactError(f"{uri} holds {member.name!r}, which is not a regular file.")
                # A regular file's member always has a reader.
                reader = cast(IO[bytes], archive.extractfile(member))
                yield File(safe_path(member.name, uri), member.size, cast(IO[bytes], _Forward(reader)))
        except BadEnd as error:
            raise ArtifactError(
                f"{uri} is corrupt after {last}: {error}, and an extractor that reads on (GNU tar does) "
                "would place files behind it that no check has read: refusing it."
            ) from error
        except NotReadAlike as error:
            raise ArtifactError(
                f"{uri} holds what tar programs read differently ({error}): SageMaker's extraction could place "
                "files no check has read, so refusing it."
            ) from error
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            raise ArtifactError(f"{uri} is not a readable tar.gz ({error}).") from error
        return
    for object_key, relative, size in _prefix_files(s3, uri):
        yield File(relative, size, _get(s3, bucket, object_key, uri))


def prefix_paths(s3, uri: str) -> set[str]:
    """The paths of the files under the artifact prefix `uri`, from its listing alone."""
    return {relative for _, relative, _ in _prefix_files(s3, uri)}


def _prefix_files(s3, uri: str) -> list[tuple[str, str, int]]:
    """(key, path, size) of each object under the prefix `uri`; refuses what SageMaker would not place."""
    bucket, key = split(uri)
    keys = listed(s3, bucket, key)
    if not keys:
        raise ArtifactError(f"No artifact at {uri}: it was deleted or never written.")
    found = []
    for object_key, size in keys:
        if object_key.endswith("/"):
            raise ArtifactError(
                f"{uri} holds the zero-byte folder object {object_key!r}, which breaks "
                "deployment of an uncompressed model (S3ModelDataSource)."
            )
        found.append((object_key, safe_path(object_key[len(key) :], uri), size))
    return found


def read_manifest(s3, uri: str) -> dict:
    """The artifact's manifest.json (an archive is read until it is found)."""
    return json.loads(manifest_bytes(s3, uri))


def manifest_bytes(s3, uri: str) -> bytes:
    """The artifact's manifest.json as stored."""
    if not is_archive(uri):
        bucket, key = split(uri)
        return _get(s3, bucket, f"{key}{MANIFEST}", uri).read()
    for file in files(s3, uri):
        if file.path == MANIFEST:
            return file.stream.read()
    raise ArtifactError(f"{uri} holds no {MANIFEST}.")


def hashed(file: File) -> dict:
    """(path, sha256, size) of a file, read to its end."""
    digest, size = hashlib.sha256(), 0
    while chunk := file.stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return {"path": file.path, "sha256": digest.hexdigest(), "size": size}


def exists(s3, uri: str) -> bool:
    """Whether anything is at `uri` (a key, or under a prefix); only "not found" is no."""
    from botocore.exceptions import ClientError

    bucket, key = split(uri)
    if not is_archive(uri):
        return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents"))
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def listed(s3, bucket: str, prefix: str) -> list[tuple[str, int]]:
    return [
        (obj["Key"], obj["Size"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]


def _get(s3, bucket: str, key: str, uri: str):
    from botocore.exceptions import ClientError

    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        raise ArtifactError(
            f"s3://{bucket}/{key} of {uri} cannot be read ({error.response['Error']['Code']})."
        ) from error
