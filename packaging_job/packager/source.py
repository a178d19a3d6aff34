"""Where a hub handle's bytes come from: a stream of a compressed archive, or a tree.

Handles: tfhub.dev and Kaggle model URLs, any http(s) URL serving a hub
compressed archive, `s3://` archives or SavedModel prefixes, and local paths.
Redirects stay on https (on http only when the handle itself is http); a
local tree may hold no links nor names that are not UTF-8; an archive's
sha256 may be pinned (`Pinned`), and then nothing else is packaged. An S3
body cut short, and keys that cannot sit side by side on disk, are refused.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, cast
from urllib.parse import urlsplit, urlunsplit

from .archive import Budget, Limits, disk_full, require_utf8_name
from .errors import PackagingError

COMPRESSED_QUERY = "tf-hub-format=compressed"
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
HTTP_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Resolved:
    """What a handle resolves to: an archive to stream, or a directory tree."""

    handle: str
    url: str
    is_archive: bool


def resolve(handle: str) -> Resolved:
    handle = handle.strip()
    scheme = urlsplit(handle).scheme
    if scheme in ("http", "https"):
        return Resolved(handle, compressed_url(handle), is_archive=True)
    if scheme == "s3":
        return Resolved(handle, handle, is_archive=not handle.endswith("/"))
    if scheme in ("", "file"):
        path = urlsplit(handle).path if scheme == "file" else handle
        if not os.path.exists(path):
            raise PackagingError(f"Local handle {path!r} does not exist.")
        if not (os.path.isfile(path) or os.path.isdir(path)):
            # A device, socket or pipe would otherwise end in an OS error mid-copy.
            raise PackagingError(
                f"Local handle {path!r} is neither a file (a hub .tar.gz archive) nor a "
                "folder (a SavedModel): point it at one of those."
            )
        return Resolved(handle, os.path.abspath(path), is_archive=os.path.isfile(path))
    raise PackagingError(
        f"Unsupported hub handle {handle!r}: use an http(s) URL (tfhub.dev, Kaggle or a "
        "compressed hub archive), an s3:// URI or a local path."
    )


def compressed_url(url: str) -> str:
    """The URL of the hub's compressed (tar.gz) download for a model URL."""
    parts = urlsplit(url)
    if parts.path.endswith(_ARCHIVE_SUFFIXES) or "tf-hub-format=" in parts.query:
        return url
    query = f"{parts.query}&{COMPRESSED_QUERY}" if parts.query else COMPRESSED_QUERY
    return urlunsplit(parts._replace(query=query))


@contextmanager
def open_archive(resolved: Resolved, s3_client=None) -> Iterator[IO[bytes]]:
    """A binary stream of the archive; nothing is buffered whole in memory."""
    scheme = urlsplit(resolved.url).scheme
    if scheme in ("http", "https"):
        with _open_http(resolved.url) as stream:
            yield stream
    elif scheme == "s3":
        bucket, key = _split_s3(resolved.url)
        body = _s3_get(s3_client, bucket, key)
        try:
            yield cast(IO[bytes], _S3Body(body, resolved.url))
        finally:
            body.close()
    else:
        with open(resolved.url, "rb") as stream:
            yield stream


class _SameOrSaferRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to https, or to http when the handle itself is http:
    never to ftp: or file:, never down from https."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = allowed

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urlsplit(newurl).scheme
        if scheme not in self.allowed:
            raise PackagingError(
                f"{req.full_url} redirects to {newurl}, a {scheme}: URL; the packaging job follows only "
                f"{' or '.join(self.allowed)} redirects."
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@contextmanager
def _open_http(url: str) -> Iterator[IO[bytes]]:
    request = urllib.request.Request(url, headers={"User-Agent": "tfhub-sagemaker-packager"})
    allowed = ("https",) if urlsplit(url).scheme == "https" else ("https", "http")
    opener = urllib.request.build_opener(_SameOrSaferRedirects(allowed))
    try:
        response = opener.open(request, timeout=HTTP_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        hint = (
            "check the handle's spelling and version" if 400 <= error.code < 500 else "the server failed; retry later"
        )
        raise PackagingError(f"HTTP {error.code} {error.reason} from {url}: {hint}.") from error
    except (TimeoutError, urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PackagingError(
            f"Cannot reach {urlsplit(url).netloc} ({reason}). The job needs internet egress "
            "to download from a hub; without it, stage the archive in S3 and pass its s3:// URI."
        ) from error
    with response:
        yield response


def _split_s3(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return parts.netloc, parts.path.lstrip("/")


def _s3_get(client, bucket: str, key: str):
    with _s3_errors(f"s3://{bucket}/{key}"):
        return client.get_object(Bucket=bucket, Key=key)["Body"]


class _S3Body:
    """An object's body, read as it arrives: a body cut short says so."""

    def __init__(self, body, uri: str) -> None:
        self.body, self.uri = body, uri

    def read(self, size: int = -1) -> bytes:
        from botocore.exceptions import HTTPClientError, IncompleteReadError

        try:
            return self.body.read(size if size >= 0 else None)
        # botocore's StreamingBody.read raises these for a connection broken or timed out
        # mid-body, and for fewer bytes than the response's Content-Length.
        except (HTTPClientError, IncompleteReadError) as error:
            raise _cut_short(self.uri, error) from error


def _cut_short(uri: str, error: BaseException) -> PackagingError:
    return PackagingError(
        f"The download of {uri} was cut short ({error}): the connection to S3 broke before the whole "
        "object arrived. Retry the job; if it recurs, check the network path to S3 (inside SageMaker, "
        "the VPC's S3 endpoint or NAT)."
    )


@contextmanager
def _s3_errors(uri: str) -> Iterator[None]:
    """S3 failures as a message: a refused or missing object, S3 out of reach, a download
    cut short, or no credentials at all."""
    from boto3.exceptions import RetriesExceededError
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

    try:
        yield
    except RetriesExceededError as error:
        # boto3's download_file (s3transfer) retries a body cut short or timed out, then raises this.
        raise _cut_short(uri, error.last_exception) from error
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        raise PackagingError(
            f"Cannot read {uri} ({code}): check the URI and that the job's execution role may read it."
        ) from error
    except (ConnectionError, HTTPClientError) as error:
        # Credentials are not the problem here: the request never reached S3.
        raise PackagingError(
            f"Cannot reach S3 for {uri}: {error}. Check the network (inside SageMaker, a VPC "
            "without an S3 endpoint or NAT cannot reach S3)."
        ) from error
    except BotoCoreError as error:
        raise PackagingError(
            f"Cannot read {uri}: {error}. Run with AWS credentials that may read it "
            "(inside SageMaker, the execution role's)."
        ) from error


class Pinned:
    """A read-through sha256 of the archive; `check` reads what is left and compares."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.digest = stream, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.digest.update(chunk)
        return chunk

    def check(self, expected: str, origin: str) -> None:
        while self.read(1 << 20):
            pass
        if self.digest.hexdigest() != expected:
            raise PackagingError(
                f"The archive from {origin} has sha256 {self.digest.hexdigest()}, not the pinned "
                f"{expected} (model.hub_sha256): the hub serves other bytes than the ones pinned."
            )


def copy_tree(resolved: Resolved, destination: str, limits: Limits, s3_client=None) -> None:
    """Copy a SavedModel directory (local or S3 prefix) into `destination`, within `limits`."""
    budget = Budget(limits, destination, resolved.url)
    if urlsplit(resolved.url).scheme != "s3":
        for folder, dirs, files in os.walk(resolved.url):
            for name in dirs + files:
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    raise PackagingError(
                        f"{resolved.url} holds links ({path} ...): a model folder holds only "
                        "files and folders; a link could make what serves differ from what was checked."
                    )
                require_utf8_name(os.path.relpath(path, resolved.url), resolved.url)
            # Each folder is an entry of the budget, as in an archive; the copy admits the files.
            for _ in dirs:
                budget.admit(0)

        def copy(source: str, target: str) -> None:
            budget.admit(os.path.getsize(source))
            shutil.copy2(source, target)

        shutil.copytree(resolved.url, destination, copy_function=copy, dirs_exist_ok=True)
        return
    bucket, prefix = _split_s3(resolved.url)
    # S3 keys are UTF-8 (Amazon S3 User Guide, "Naming Amazon S3 objects"): their names need no check.
    folders: set[str] = set()
    with _s3_errors(resolved.url):
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                relative = obj["Key"][len(prefix) :]
                if not relative or relative.endswith("/"):
                    continue
                target = os.path.realpath(os.path.join(destination, relative))
                if not target.startswith(os.path.realpath(destination) + os.sep):
                    raise PackagingError(f"Unsafe key {obj['Key']!r} under s3://{bucket}/{prefix}.")
                # The folders a key implies are entries of the budget too, once each.
                folder = os.path.dirname(relative)
                while folder and folder not in folders:
                    folders.add(folder)
                    budget.admit(0)
                    folder = os.path.dirname(folder)
                budget.admit(obj["Size"])
                _download(s3_client, bucket, obj["Key"], target, resolved.url)
    if not budget.files:
        raise PackagingError(f"No objects under s3://{bucket}/{prefix}: check the prefix.")


def _download(client, bucket: str, key: str, target: str, origin: str) -> None:
    uri = f"s3://{bucket}/{key}"
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with _s3_errors(uri):
            client.download_file(bucket, key, target)
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
        # S3 keys are names, not paths: `p/x` and `p/x/y` may both exist, a file and a folder cannot.
        raise PackagingError(
            f"Cannot copy {uri}: another key under {origin} makes one of its path's names both a file "
            "and a folder, which a disk cannot hold. Remove the key that is not part of the model."
        ) from error
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise disk_full(origin) from error
        raise PackagingError(
            f"Cannot copy {uri} to the job's disk ({error.strerror or error}): check the keys under {origin}, "
            "whose names become paths (each part at most 255 bytes)."
        ) from error
