"""One model artifact in S3, in either of the forms SageMaker serves.

- a prefix ending in `/` (ModelDataSource, instances): one object per file;
- a `model.tar.gz` (ModelDataUrl, serverless and instances): one archive.

Both hold `<name>/<version>/...`, `manifest.json` and optionally `code/`. This
module reads either form as a stream of files, and copies an artifact from
one form, bucket and account to another without holding it in memory or on
disk. Links, devices, absolute or `..` paths and zero-byte "folder" objects
are refused: SageMaker would either fail on them (S3ModelDataSource) or place
something other than what the manifest lists.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, cast

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
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ArtifactError(f"{where} holds an unsafe path {name!r}.")
    return path


def files(s3, uri: str) -> Iterator[File]:
    """Every file of the artifact at `uri`, in its stored order, each readable once."""
    bucket, key = split(uri)
    if is_archive(uri):
        body = _get(s3, bucket, key, uri)
        try:
            with tarfile.open(fileobj=body, mode="r|gz") as archive:
                for member in archive:
                    if member.isdir():
                        continue
                    if not member.isfile():
                        raise ArtifactError(f"{uri} holds {member.name!r}, which is not a regular file.")
                    # A regular file's member always has a reader.
                    reader = cast(IO[bytes], archive.extractfile(member))
                    yield File(safe_path(member.name, uri), member.size, cast(IO[bytes], _Forward(reader)))
        except (tarfile.TarError, EOFError, OSError) as error:
            raise ArtifactError(f"{uri} is not a readable tar.gz ({error}).") from error
        return
    keys = _list(s3, bucket, key)
    if not keys:
        raise ArtifactError(f"No artifact at {uri}: it was deleted or never written.")
    for object_key, size in keys:
        if object_key.endswith("/"):
            raise ArtifactError(
                f"{uri} holds the zero-byte folder object {object_key!r}, which breaks "
                "deployment of an uncompressed model (S3ModelDataSource)."
            )
        relative = safe_path(object_key[len(key) :], uri)
        yield File(relative, size, _get(s3, bucket, object_key, uri))


def read_manifest(s3, uri: str) -> dict:
    """The artifact's manifest.json (an archive is read until it is found)."""
    if not is_archive(uri):
        bucket, key = split(uri)
        return json.loads(_get(s3, bucket, f"{key}{MANIFEST}", uri).read())
    for file in files(s3, uri):
        if file.path == MANIFEST:
            return json.loads(file.stream.read())
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


def copy(source_s3, source_uri: str, target_s3, target_uri: str) -> list[str]:
    """Copy an artifact into `target_uri` (a prefix or a .tar.gz key), converting the
    form as needed; return the keys written. Every write is conditional (S3's
    If-None-Match: it never replaces an object), and all or nothing: a copy that
    fails removes what it wrote."""
    bucket, key = split(target_uri)
    written: list[str] = []
    try:
        if not is_archive(target_uri):
            for file in files(source_s3, source_uri):
                put_new(target_s3, bucket, key + file.path, file.stream)
                written.append(key + file.path)
        elif is_archive(source_uri):
            source_bucket, source_key = split(source_uri)
            put_new(target_s3, bucket, key, _get(source_s3, source_bucket, source_key, source_uri))
            written.append(key)
        else:
            _upload_as_archive(files(source_s3, source_uri), target_s3, bucket, key)
            written.append(key)
    except BaseException:
        remove(target_s3, bucket, written)
        raise
    return written


def put_new(s3, bucket: str, key: str, stream, part_size: int = 64 * _CHUNK) -> None:
    """Upload `stream` to a key that must not exist yet (If-None-Match: *), in
    parts when it is large; an existing object is an ArtifactError, never replaced."""
    from botocore.exceptions import ClientError

    first = _read_full(stream, part_size)
    try:
        if len(first) < part_size:
            s3.put_object(Bucket=bucket, Key=key, Body=first, IfNoneMatch="*")
            return
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        try:
            parts, number, chunk = [], 1, first
            while chunk:
                etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk)["ETag"]
                parts.append({"ETag": etag, "PartNumber": number})
                number, chunk = number + 1, _read_full(stream, part_size)
            s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload, IfNoneMatch="*", MultipartUpload={"Parts": parts}
            )
        except BaseException:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
            raise
    except ClientError as error:
        if error.response["Error"]["Code"] in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            raise ArtifactError(f"s3://{bucket}/{key} exists already: a promoted copy is never replaced.") from error
        raise


def _read_full(stream, size: int) -> bytes:
    """Up to `size` bytes: short only at the end of the stream."""
    chunks, left = [], size
    while left and (chunk := stream.read(left)):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def remove(s3, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        if chunk:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk]})


def _upload_as_archive(source: Iterator[File], s3, bucket: str, key: str) -> None:
    """Stream files into a tar.gz that is uploaded while it is written (a pipe between)."""
    read_end, write_end = os.pipe()
    failure: list[BaseException] = []

    def write() -> None:
        try:
            with open(write_end, "wb") as pipe, tarfile.open(fileobj=pipe, mode="w|gz") as archive:
                for file in source:
                    info = tarfile.TarInfo(file.path)
                    info.size, info.mode = file.size, 0o644
                    archive.addfile(info, file.stream)
        except BaseException as error:  # reported by the uploading side
            failure.append(error)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    with open(read_end, "rb") as pipe:
        put_new(s3, bucket, key, pipe)
    writer.join()
    if failure:
        raise failure[0]


def _list(s3, bucket: str, prefix: str) -> list[tuple[str, int]]:
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
