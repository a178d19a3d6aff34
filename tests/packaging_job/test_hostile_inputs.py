"""What a hostile or broken hub archive (or handle) can make the job publish: nothing.

Each case is refused with a message a user can act on, and the model folder is
left as it was.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile

import boto3
import pytest
from moto import mock_aws
from packager.archive import Limits
from packager.errors import PackagingError
from packager.package import package
from packager.savedmodel import read_info

from fixtures.hub_server import CutShort


def run(handle, tmp_path, **kwargs):
    return package(handle, str(tmp_path / "model"), "text", 1, log=lambda m: None, **kwargs)


def assert_nothing_left(tmp_path):
    model_dir = tmp_path / "model"
    assert not model_dir.exists() or os.listdir(model_dir) == []


def tar_of(model_dir, *extra: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    """The model's files as an uncompressed tar, then crafted members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in sorted(os.listdir(model_dir)):
            archive.add(os.path.join(model_dir, name), arcname=name)
        for info, data in extra:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def link(name: str, target: str, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = (tarfile.LNKTYPE if hard else tarfile.SYMTYPE), target
    return info, None


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def served(hub, body: bytes) -> str:
    hub.routes["/m/1"] = (200, body)
    return f"{hub.url}/m/1"


@pytest.mark.parametrize(
    "member, expected",
    [
        # Inside the extraction folder, which the data filter admits; after the move
        # it would point out of the artifact, with a harmless file hashed in its place.
        (link("assets/vocab.txt", "../../../etc/hostname"), r"'assets/vocab.txt' .* it is a link"),
        (link("variables/alias", "saved_model.pb"), r"'variables/alias' .* it is a link"),
        (link("assets/copy.txt", "assets/later.txt", hard=True), r"'assets/copy.txt' .* it is a link"),
    ],
)
def test_links_in_an_archive_are_refused(hub, text_model, tmp_path, member, expected):
    body = gzip.compress(tar_of(text_model, member, regular("assets/later.txt", b"later")))
    with pytest.raises(PackagingError, match=expected):
        run(served(hub, body), tmp_path)
    assert_nothing_left(tmp_path)


def test_a_broken_header_after_the_first_member_is_a_corrupt_archive_not_a_partial_model(hub, text_model, tmp_path):
    raw = bytearray(tar_of(text_model))
    with tarfile.open(fileobj=io.BytesIO(bytes(raw))) as archive:
        second = archive.getmembers()[1].offset
    raw[second : second + 100] = b"\x7f" * 100  # not a header: tarfile would stop there quietly
    with pytest.raises(PackagingError, match=r"corrupt after .*a broken header follows"):
        run(served(hub, gzip.compress(bytes(raw))), tmp_path)
    assert_nothing_left(tmp_path)


def test_an_archive_that_stops_at_a_member_boundary_is_corrupt(hub, text_model, tmp_path):
    raw = tar_of(text_model)
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        last = archive.getmembers()[-1]
    end = last.offset_data + -(-last.size // 512) * 512
    with pytest.raises(PackagingError, match=r"corrupt after"):
        run(served(hub, gzip.compress(raw[:end])), tmp_path)
    assert_nothing_left(tmp_path)


def test_a_member_right_after_the_end_of_archive_marker_is_a_corrupt_archive(hub, text_model, tmp_path):
    """Within the record tarfile reads ahead, where a check of later blocks alone
    would miss it; an extractor that reads on (`tar --ignore-zeros`) finds it."""
    raw = tar_of(text_model)
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        last = archive.getmembers()[-1]
    end = last.offset_data + -(-last.size // 512) * 512 + 2 * 512
    info, data = regular("assets/hidden.txt", b"found by an extractor that reads on")
    body = raw[:end] + info.tobuf() + data.ljust(512, b"\0") + bytes(1024)
    with pytest.raises(PackagingError, match=r"corrupt after .*: data follows its end-of-archive marker"):
        run(served(hub, gzip.compress(body)), tmp_path)
    assert_nothing_left(tmp_path)


def test_a_download_cut_short_says_so(hub, text_archive, tmp_path):
    hub.routes["/m/1"] = (200, CutShort(text_archive[: len(text_archive) // 2]))
    with pytest.raises(PackagingError, match=r"truncated or corrupt"):
        run(f"{hub.url}/m/1", tmp_path)
    assert_nothing_left(tmp_path)


def test_a_decompression_bomb_is_refused_before_it_fills_the_disk(hub, text_model, tmp_path):
    bomb = gzip.compress(tar_of(text_model, regular("assets/zeros", bytes(200 << 20))), compresslevel=9)
    assert len(bomb) * 100 < 200 << 20  # more than 100:1
    with pytest.raises(PackagingError, match=r"expands more than 100 times its size .*decompression bomb"):
        run(served(hub, bomb), tmp_path)
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize(
    "limits, expected",
    [
        (Limits(files=3), r"more than 3 files and folders \(packaging.limits.files"),
        (Limits(model_mb=0), r"larger than 0 MB \(packaging.limits.model_mb\)"),
        (Limits(download_mb=0), r"larger than 0 MB \(packaging.limits.download_mb\)"),
        (Limits(spare_mb=10**9), r"Not enough disk space .*raise packaging.volume_gb"),
    ],
)
def test_sizes_are_bounded_by_settings(hub, text_archive, tmp_path, limits, expected):
    with pytest.raises(PackagingError, match=expected):
        run(served(hub, text_archive), tmp_path, limits=limits)
    assert_nothing_left(tmp_path)


@mock_aws
@pytest.mark.parametrize("where", ["local folder", "s3 prefix"])
@pytest.mark.parametrize(
    "limits, expected",
    [
        (Limits(files=3), r"holds more than 3 files and folders \(packaging.limits.files, .*\): raise the limit"),
        (Limits(model_mb=0), r"larger than 0 MB \(packaging.limits.model_mb\): raise the limit"),
        (Limits(spare_mb=10**9), r"Not enough disk space .*raise packaging.volume_gb"),
    ],
)
def test_a_folder_handle_is_bounded_like_an_archive(text_model, tmp_path, where, limits, expected):
    s3 = None
    handle = str(text_model)
    if where == "s3 prefix":
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        for path in text_model.rglob("*"):
            if path.is_file():
                s3.upload_file(str(path), "models", f"tree/{path.relative_to(text_model)}")
        handle = "s3://models/tree/"
    with pytest.raises(PackagingError, match=expected):
        run(handle, tmp_path, limits=limits, s3_client=s3)
    assert_nothing_left(tmp_path)


def test_a_disk_that_fills_during_extraction_is_reported_as_full_not_corrupt(hub, text_archive, tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # A member's bytes meet a full disk after the free-space check passed
    # (another writer, or a sparse estimate): tarfile writes them with copyfileobj.
    monkeypatch.setattr(tarfile, "copyfileobj", no_space)
    with pytest.raises(
        PackagingError, match=r"Not enough disk space for the model from .*raise packaging.volume_gb"
    ) as raised:
        run(served(hub, text_archive), tmp_path)
    assert "corrupt" not in str(raised.value)
    assert_nothing_left(tmp_path)


def test_a_pinned_sha256_accepts_only_those_bytes(hub, text_archive, tmp_path):
    pin = hashlib.sha256(text_archive).hexdigest()
    assert run(served(hub, text_archive), tmp_path, hub_sha256=pin)["source_sha256"] == pin
    shutil.rmtree(tmp_path / "model")
    with pytest.raises(PackagingError, match=rf"has sha256 {pin}, not the pinned 0{{64}}"):
        run(served(hub, text_archive), tmp_path, hub_sha256="0" * 64)
    assert_nothing_left(tmp_path)


def test_redirects_never_leave_http_for_another_scheme(hub, tmp_path):
    hub.routes["/m/1"] = (302, b"ftp://127.0.0.1/model.tar.gz")
    with pytest.raises(PackagingError, match=r"redirects to ftp://.*follows only https or http redirects"):
        run(f"{hub.url}/m/1", tmp_path)


def test_an_https_handle_never_follows_a_redirect_down_to_http():
    import urllib.request

    from packager.source import _SameOrSaferRedirects

    request = urllib.request.Request("https://tfhub.dev/m/1")
    with pytest.raises(PackagingError, match=r"redirects to http://evil.example/m.tar.gz, a http: URL"):
        _SameOrSaferRedirects(("https",)).redirect_request(
            request, None, 302, "Found", {}, "http://evil.example/m.tar.gz"
        )


def test_a_local_folder_with_a_dangling_link_is_refused(text_model, tmp_path):
    folder = tmp_path / "source"
    shutil.copytree(text_model, folder)
    (folder / "assets" / "gone.txt").symlink_to(tmp_path / "nowhere")
    with pytest.raises(PackagingError, match=r"holds links"):
        run(str(folder), tmp_path)
    assert_nothing_left(tmp_path)


def test_two_savedmodels_side_by_side_are_refused(text_model, tmp_path):
    # Nested ones: tests/packaging_job/test_served_tree.py.
    side_by_side = tmp_path / "two"
    for name in ("a", "b"):
        shutil.copytree(text_model, side_by_side / name)
    with pytest.raises(PackagingError, match=r"several SavedModels \(a/saved_model.pb, b/saved_model.pb\)"):
        run(str(side_by_side), tmp_path)
    assert_nothing_left(tmp_path)


def test_the_serve_metagraph_is_the_one_read(text_model, tmp_path):
    from packager.savedmodel import _saved_model_message

    message = _saved_model_message()
    original = message()
    original.ParseFromString((text_model / "saved_model.pb").read_bytes())

    def saved_model(*with_serve: bool) -> bytes:
        proto = message()
        for serve in with_serve:
            graph = proto.meta_graphs.add()
            graph.CopyFrom(original.meta_graphs[0])
            if not serve:
                del graph.meta_info_def.tags[:]
                graph.meta_info_def.tags.append("train")
                graph.signature_def["train_only"].CopyFrom(graph.signature_def["serving_default"])
        return proto.SerializeToString()

    folder = tmp_path / "two-graphs"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(saved_model(False, True))  # the training graph first
    assert "train_only" not in read_info(str(folder)).signatures
    (folder / "saved_model.pb").write_bytes(saved_model(False))
    with pytest.raises(PackagingError, match=r"no MetaGraph tagged 'serve' \(it has \[\['train'\]\]\)"):
        read_info(str(folder))


def test_the_digest_covers_the_layout_and_the_inference_code(text_model, tmp_path):
    code = tmp_path / "inference.py"
    code.write_text("def handler(data, context):\n    return data\n")
    record = run(str(text_model), tmp_path, inference_code=str(code))
    paths = [entry["path"] for entry in record["files"]]
    assert "code/inference.py" in paths and "text/1/saved_model.pb" in paths
    assert record["digest_version"] == 2 and "manifest.json" not in paths
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["tree_digest"] == record["tree_digest"]
