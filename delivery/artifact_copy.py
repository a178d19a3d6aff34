"""Writing a promoted copy: each object written once, and only with the bytes the
digest's manifest lists.

Nobody replaces or deletes a promoted copy, the promotion role included (the
bucket policy, `stacks/storage/bucket_guard.py`), so nothing that could be
wrong may ever be committed. Each file is hashed as it streams, and its upload
completes only when its sha256 and size are the manifest's; otherwise the
upload is aborted, which leaves no object (S3 User Guide, "Uploading and
copying objects using multipart upload": an aborted upload's parts are freed
and no object is created). `manifest.json` is written last, so a copy cut
short holds only correct files and no manifest, and the next promotion of the
digest writes the files that are missing. Every write is conditional
(If-None-Match: an object there already is never replaced). `verified_copy`
makes or reuses a copy and verifies it, for promotions and rollbacks alike.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from delivery import artifacts
from delivery.artifact_forms import (
    MANIFEST,
    ArtifactError,
    File,
    exists,
    files,
    is_archive,
    listed,
    prefix_paths,
    split,
)
from delivery.artifacts import PromotionError

_PART = 64 << 20


class _Checked:
    """A file's stream, hashed as it is read. `confirm()` raises unless what was read
    is exactly the manifest's file: its sha256 and its size."""

    def __init__(self, file: File, expected: dict, source_uri: str) -> None:
        self.file, self.expected, self.source_uri = file, expected, source_uri
        self._sha256, self._size = hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.stream.read(size)
        self._sha256.update(chunk)
        self._size += len(chunk)
        return chunk

    def confirm(self) -> None:
        if (self._sha256.hexdigest(), self._size) != (self.expected["sha256"], self.expected["size"]):
            raise ArtifactError(
                f"{self.file.path} of {self.source_uri} is not the file its manifest lists (sha256 "
                f"{self._sha256.hexdigest()}, {self._size} bytes): it was changed after it was packaged, or while "
                "it was read. Nothing of that file was written; promote again once the source is intact."
            )


def verified_copy(
    source_s3, source_uri: str, target_s3, copy_uri: str, digest: str, accept: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """The verified promoted copy at `copy_uri` of the artifact at `source_uri`
    (its manifest, as verified): written once, never overwritten or deleted.
    `accept` refuses a manifest the target cannot serve, before anything is written.

    A complete copy already there (a re-run, or after a rollback) is verified and
    used; one cut short is completed; one that does not verify is reported and left
    alone: an endpoint may serve it, and nobody may delete it.
    """
    try:
        if exists(target_s3, copy_uri):
            try:
                verified = artifacts.verify(target_s3, copy_uri, digest)
            except PromotionError as error:
                if is_archive(copy_uri):
                    raise _left_alone(error) from error
            else:
                accept(verified)
                return verified
        manifest, expected = artifacts.listed_files(source_s3, source_uri, digest)
        accept(json.loads(manifest))
        copy(source_s3, source_uri, target_s3, copy_uri, manifest, expected)
    except ArtifactError as error:
        raise PromotionError(str(error)) from error
    try:
        return artifacts.verify(target_s3, copy_uri, digest)
    except PromotionError as error:
        raise _left_alone(error) from error


def _left_alone(error: PromotionError) -> PromotionError:
    return PromotionError(
        f"{error} The promoted copy is left alone (an endpoint may serve it, and promoted copies are "
        "never deleted): investigate who changed it."
    )


def copy(source_s3, source_uri: str, target_s3, target_uri: str, manifest: bytes, expected: dict[str, dict]) -> None:
    """Copy the artifact at `source_uri` into `target_uri` (a prefix or a .tar.gz key),
    converting the form as needed. `manifest` is the source's manifest.json as read
    and checked against the digest, `expected` its files by path. Keys already under
    a target prefix are kept as they are (the caller verifies the whole copy)."""
    bucket, key = split(target_uri)
    if not is_archive(source_uri):
        # A prefix's listing shows a file too many or too few before anything is
        # written (an archive's only as it is read).
        paths = prefix_paths(source_s3, source_uri) - {MANIFEST}
        if paths != set(expected):
            raise ArtifactError(
                f"{source_uri} does not hold exactly the manifest's files: unlisted "
                f"{sorted(paths - set(expected))[:5]}, missing {sorted(set(expected) - paths)[:5]}."
            )
    checked = _checked_files(source_s3, source_uri, expected)
    if is_archive(target_uri):
        _upload_as_archive(checked, manifest, set(expected), target_s3, bucket, key)
        return
    present = {object_key for object_key, _ in listed(target_s3, bucket, key)}
    copied = set()
    for stream in checked:
        copied.add(stream.file.path)
        if key + stream.file.path in present:
            # Written by a promotion cut short; verified with the rest. Its
            # source object was opened for reading: let the connection go.
            getattr(stream.file.stream, "close", lambda: None)()
            continue
        put_new(target_s3, bucket, key + stream.file.path, stream, ready=stream.confirm)
    # The manifest marks a complete copy: only once every listed file is there.
    _require_all(copied, set(expected))
    if key + MANIFEST not in present:
        put_new(target_s3, bucket, key + MANIFEST, io.BytesIO(manifest))


def _require_all(copied: set[str], expected: set[str]) -> None:
    if copied != expected:
        raise ArtifactError(f"The source lacks files its manifest lists: {sorted(expected - copied)[:5]}.")


def _checked_files(source_s3, source_uri: str, expected: dict[str, dict]) -> Iterator[_Checked]:
    """The source's files but its manifest (the caller's checked copy is written
    instead), each only if the manifest lists it."""
    seen = set()
    for file in files(source_s3, source_uri):
        if file.path in seen:
            # An archive may hold a path twice; extracting it keeps the last one.
            raise ArtifactError(f"{source_uri} holds {file.path!r} twice.")
        seen.add(file.path)
        if file.path == MANIFEST:
            continue
        if file.path not in expected:
            raise ArtifactError(f"{source_uri} holds {file.path!r}, which its manifest does not list.")
        yield _Checked(file, expected[file.path], source_uri)


def put_new(s3, bucket: str, key: str, stream, ready: Callable[[], None] = lambda: None) -> None:
    """Upload `stream` to a key that must not exist yet (If-None-Match: *), in parts
    when it is large, completing the upload only once `ready()` (called when the
    stream is read to its end) returns; an existing object is an ArtifactError,
    never replaced."""
    from botocore.exceptions import ClientError

    first = _read_full(stream, _PART)
    try:
        if len(first) < _PART:
            ready()
            s3.put_object(Bucket=bucket, Key=key, Body=first, IfNoneMatch="*")
            return
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        try:
            parts, number, chunk = [], 1, first
            while chunk:
                etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk)["ETag"]
                parts.append({"ETag": etag, "PartNumber": number})
                number, chunk = number + 1, _read_full(stream, _PART)
            ready()
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


def _upload_as_archive(
    source: Iterator[_Checked], manifest: bytes, expected: set[str], s3, bucket: str, key: str
) -> None:
    """Stream the files into a tar.gz that is uploaded while it is written (a pipe
    between); the upload completes only if every listed file went in as listed."""
    read_end, write_end = os.pipe()
    failure: list[BaseException] = []

    def write() -> None:
        try:
            with open(write_end, "wb") as pipe, tarfile.open(fileobj=pipe, mode="w|gz") as archive:
                added = set()
                for stream in source:
                    _add(archive, stream.file.path, stream.file.size, stream)
                    stream.confirm()
                    added.add(stream.file.path)
                _require_all(added, expected)
                _add(archive, MANIFEST, len(manifest), io.BytesIO(manifest))
        except BaseException as error:  # raised on the uploading side, before the upload completes
            failure.append(error)

    def written() -> None:
        writer.join()
        if failure:
            raise failure[0]

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        with open(read_end, "rb") as pipe:
            put_new(s3, bucket, key, pipe, ready=written)
    finally:
        # An upload that failed early closed the pipe: the writer stops at its next write.
        writer.join(timeout=60)


def _add(archive: tarfile.TarFile, path: str, size: int, stream: IO[bytes] | _Checked) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mode = size, 0o644
    archive.addfile(info, stream)
