"""What would otherwise end the job in a traceback, or publish past a limit: an S3
body cut short, a name that is not UTF-8, S3 keys a disk cannot hold side by side,
and an archive of folders. Each is refused in one line, the model folder left empty."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws
from packager.archive import Limits
from packager.errors import PackagingError
from packager.package import package
from urllib3.exceptions import ProtocolError


def run(handle, tmp_path, **kwargs):
    return package(handle, str(tmp_path / "model"), "text", 1, log=lambda m: None, **kwargs)


def assert_nothing_left(tmp_path):
    model_dir = tmp_path / "model"
    assert not model_dir.exists() or os.listdir(model_dir) == []


def archive_of(model_dir, tmp_path, *extra: tarfile.TarInfo, data: bytes = b"") -> str:
    """A tar.gz of the model's files and then `extra` members (each with `data`), as a local handle.
    GNU format: its names are the bytes given, where pax would write them as UTF-8."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name in sorted(os.listdir(model_dir)):
            archive.add(os.path.join(model_dir, name), arcname=name)
        for info in extra:
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    path = tmp_path / "m.tar.gz"
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return str(path)


def stubbed_s3():
    return boto3.client("s3", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


class BrokenConnection(io.RawIOBase):
    """A response stream whose connection breaks after `good` bytes, as urllib3 reports it."""

    def __init__(self, good: bytes) -> None:
        self.rest = good

    def read(self, size=-1):
        if not self.rest:
            raise ProtocolError("Connection broken: IncompleteRead")
        size = len(self.rest) if size is None or size < 0 else size
        chunk, self.rest = self.rest[:size], self.rest[size:]
        return chunk


@pytest.mark.parametrize("how", ["fewer bytes than Content-Length", "connection broken"])
def test_an_s3_archive_cut_short_mid_body_says_so(text_archive, tmp_path, how):
    half = text_archive[: len(text_archive) // 2]
    raw = io.BytesIO(half) if how == "fewer bytes than Content-Length" else BrokenConnection(half)
    s3 = stubbed_s3()
    with Stubber(s3) as stubber:
        stubber.add_response(
            "get_object",
            {"Body": StreamingBody(raw, len(text_archive))},
            {"Bucket": "models", "Key": "m.tar.gz"},
        )
        with pytest.raises(PackagingError, match=r"^The download of s3://models/m.tar.gz was cut short \(.*Retry"):
            run("s3://models/m.tar.gz", tmp_path, s3_client=s3)
    assert_nothing_left(tmp_path)


def test_an_s3_prefix_object_cut_short_after_every_retry_says_so(tmp_path):
    s3 = stubbed_s3()
    with Stubber(s3) as stubber:
        stubber.add_response(
            "list_objects_v2",
            {"Contents": [{"Key": "tree/saved_model.pb", "Size": 10}]},
            {"Bucket": "models", "Prefix": "tree/"},
        )
        stubber.add_response("head_object", {"ContentLength": 10})
        # download_file tries a body cut short five times (s3transfer's default) before giving up.
        for _ in range(5):
            stubber.add_response("get_object", {"Body": StreamingBody(io.BytesIO(b"half"), 10)})
        with pytest.raises(PackagingError, match=r"^The download of s3://models/tree/saved_model.pb was cut short"):
            run("s3://models/tree/", tmp_path, s3_client=s3)
    assert_nothing_left(tmp_path)


def test_an_archive_member_named_in_other_bytes_than_utf8_is_refused(text_model, tmp_path):
    latin1 = tarfile.TarInfo("assets/caf\udce9.txt")  # the byte 0xe9, as tarfile decodes it
    latin1.size = 3
    handle = archive_of(text_model, tmp_path, latin1, data=b"abc")
    with pytest.raises(PackagingError, match=r"^Refusing b'assets/caf\\xe9.txt' from .*: its name is not UTF-8"):
        run(handle, tmp_path)
    assert_nothing_left(tmp_path)


def test_a_folder_file_named_in_other_bytes_than_utf8_is_refused(text_model, tmp_path):
    folder = tmp_path / "source"
    shutil.copytree(text_model, folder)
    with open(os.path.join(bytes(folder), b"assets", b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"abc")
    with pytest.raises(PackagingError, match=r"^Refusing b'assets/caf\\xe9.txt' from .*: its name is not UTF-8"):
        run(str(folder), tmp_path)
    assert_nothing_left(tmp_path)


@mock_aws
@pytest.mark.parametrize(
    "keys, expected",
    [
        (["tree/x", "tree/x/y"], r"^Cannot copy s3://models/tree/x/y: another key .* both a file and a folder"),
        ([f"tree/{'n' * 300}"], r"^Cannot copy s3://models/tree/n+ to the job's disk \(File name too long\)"),
    ],
)
def test_s3_keys_that_cannot_be_paths_on_disk_are_named(tmp_path, keys, expected):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="models")
    for key in keys:
        s3.put_object(Bucket="models", Key=key, Body=b"1")
    with pytest.raises(PackagingError, match=expected):
        run("s3://models/tree/", tmp_path, s3_client=s3)
    assert_nothing_left(tmp_path)


def folders(count: int) -> list[tarfile.TarInfo]:
    entries = []
    for index in range(count):
        entry = tarfile.TarInfo(f"assets/empty{index}")
        entry.type = tarfile.DIRTYPE
        entries.append(entry)
    return entries


def test_every_archive_member_folders_too_counts_against_max_files(text_model, tmp_path):
    handle = archive_of(text_model, tmp_path, *folders(50))
    with tarfile.open(handle) as archive:
        entries = len(archive.getmembers())
    assert run(handle, tmp_path, limits=Limits(files=entries))
    shutil.rmtree(tmp_path / "model")
    with pytest.raises(PackagingError, match=rf"more than {entries - 1} files and folders \(packaging.limits.files"):
        run(handle, tmp_path, limits=Limits(files=entries - 1))
    assert_nothing_left(tmp_path)


def test_folders_an_archive_only_implies_count_against_max_files_too(text_model, tmp_path):
    # No folder entry for a0..a9: each deep file makes ten folders the budget must see.
    deep = tarfile.TarInfo("assets/" + "/".join(f"a{depth}" for depth in range(10)) + "/f")
    deep.size = 1
    handle = archive_of(text_model, tmp_path, deep, data=b"x")
    with tarfile.open(handle) as archive:
        entries = len(archive.getmembers()) + 10
    assert run(handle, tmp_path, limits=Limits(files=entries))
    shutil.rmtree(tmp_path / "model")
    with pytest.raises(PackagingError, match=rf"more than {entries - 1} files and folders"):
        run(handle, tmp_path, limits=Limits(files=entries - 1))
    assert_nothing_left(tmp_path)


@mock_aws
@pytest.mark.parametrize("where", ["local folder", "s3 prefix"])
def test_a_folder_handle_counts_its_folders_against_max_files_too(text_model, tmp_path, where):
    folder = tmp_path / "source"
    shutil.copytree(text_model, folder)
    (folder / "assets" / "a" / "b" / "c").mkdir(parents=True)
    (folder / "assets" / "a" / "b" / "c" / "deep.txt").write_bytes(b"abc")
    entries = len(list(folder.rglob("*")))  # no folder is empty: an S3 prefix implies them all
    handle, s3 = str(folder), None
    if where == "s3 prefix":
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        for path in folder.rglob("*"):
            if path.is_file():
                s3.upload_file(str(path), "models", f"tree/{path.relative_to(folder)}")
        handle = "s3://models/tree/"
    assert run(handle, tmp_path, limits=Limits(files=entries), s3_client=s3)
    shutil.rmtree(tmp_path / "model")
    with pytest.raises(PackagingError, match=rf"more than {entries - 1} files and folders \(packaging.limits.files"):
        run(handle, tmp_path, limits=Limits(files=entries - 1), s3_client=s3)
    assert_nothing_left(tmp_path)
