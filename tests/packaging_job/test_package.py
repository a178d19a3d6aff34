"""The packaging run on real TensorFlow models, over loopback HTTP, local paths and S3."""

from __future__ import annotations

import json
import os
import socket

import boto3
import numpy as np
import pytest
import tensorflow as tf
from moto import mock_aws
from packager.contract import DEFAULT_SIGNATURE
from packager.errors import PackagingError
from packager.manifest import file_digests, tree_digest
from packager.package import package

from fixtures.demo_model import archive_with_member

SAMPLE = ["Hello", "nope"]


def run(handle, tmp_path, **kwargs):
    model_dir = tmp_path / "model"
    kwargs.setdefault("log", lambda message: None)
    record = package(handle, str(model_dir), "text", 1, **kwargs)
    return model_dir, record


def test_the_signature_checked_by_default_is_the_one_tf_serving_answers():
    # The contract spells it without importing TensorFlow; it must be TensorFlow's.
    assert DEFAULT_SIGNATURE == tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY


def assert_same_predictions(source_dir, packaged_dir):
    source, packaged = tf.saved_model.load(str(source_dir)), tf.saved_model.load(str(packaged_dir))
    sentences = tf.constant(["hello", "World", "unknown"])
    for key in ("embedding", "known"):
        np.testing.assert_array_equal(
            source.signatures["serving_default"](sentences)[key],
            packaged.signatures["serving_default"](sentences)[key],
        )
    values = tf.constant([[1.0, 2.0]])
    np.testing.assert_array_equal(
        source.signatures["scale"](values)["scaled"], packaged.signatures["scale"](values)["scaled"]
    )


def test_http_handle_becomes_a_tf_serving_layout_with_a_manifest(hub, text_archive, text_model, tmp_path):
    hub.routes["/google/text/1"] = (200, text_archive)
    model_dir, record = run(f"{hub.url}/google/text/1", tmp_path, sample_input=SAMPLE)

    version_dir = model_dir / "text" / "1"
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "assets" / "vocab.txt").read_text() == "hello\nworld\n"
    shards = [p.name for p in (version_dir / "variables").iterdir() if "data" in p.name]
    assert len(shards) > 1, shards
    assert sorted(os.listdir(model_dir)) == ["manifest.json", "text"]
    assert hub.requests == ["/google/text/1?tf-hub-format=compressed"]

    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest == record
    assert manifest["source_handle"] == f"{hub.url}/google/text/1"
    assert manifest["resolved_url"] == f"{hub.url}/google/text/1?tf-hub-format=compressed"
    assert manifest["tensorflow_version"] == tf.__version__
    # The digest covers every served file, named from the artifact's root.
    assert manifest["digest_version"] == 2
    assert manifest["tree_digest"] == tree_digest(file_digests(str(model_dir)))
    assert manifest["total_bytes"] == sum(f["size"] for f in manifest["files"])
    assert {f["path"] for f in manifest["files"]} >= {"text/1/saved_model.pb", "text/1/assets/vocab.txt"}
    default = manifest["signatures"]["serving_default"]
    assert default["inputs"]["sentences"] == {"name": "serving_default_sentences:0", "dtype": "string", "shape": [None]}
    assert default["outputs"]["embedding"]["shape"] == [None, 16]
    assert default["outputs"]["known"]["dtype"] == "int32"
    assert manifest["signatures"]["scale"]["inputs"]["values"]["dtype"] == "float32"
    assert manifest["sample_output_shapes"] == {"embedding": [2, 16], "known": [2]}

    assert_same_predictions(text_model, version_dir)


def test_servable_files_are_moved_not_re_saved(hub, text_archive, text_model, tmp_path):
    hub.routes["/m/1"] = (200, text_archive)
    model_dir, record = run(f"{hub.url}/m/1", tmp_path)
    assert {f["path"]: f["sha256"] for f in record["files"]} == {
        f"text/1/{f['path']}": f["sha256"] for f in file_digests(str(text_model))
    }
    assert record["sample_output_shapes"] is None and record["sample_output"] is None


def test_local_folder_and_local_archive_handles(text_model, text_archive, tmp_path):
    _, from_folder = run(str(text_model), tmp_path / "a")
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(text_archive)
    _, from_archive = run(str(archive), tmp_path / "b")
    assert from_folder["tree_digest"] == from_archive["tree_digest"]


def test_named_signature_with_numeric_columns(text_model, tmp_path):
    _, record = run(str(text_model), tmp_path, signature="scale", sample_input={"values": [[1.0, 2.0]]})
    assert record["signature"] == "scale"
    assert record["sample_output_shapes"] == {"scaled": [1, 2]}
    # The model's own answer, which the smoke test expects from the endpoint.
    assert record["sample_output"] == {"scaled": [[3.0, 6.0]]}


@mock_aws
def test_s3_archive_and_s3_prefix_handles(text_model, text_archive, tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="hub/text.tar.gz", Body=text_archive)
    for path in text_model.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "models", f"tree/{path.relative_to(text_model)}")

    _, from_archive = run("s3://models/hub/text.tar.gz", tmp_path / "a", s3_client=s3)
    _, from_prefix = run("s3://models/tree/", tmp_path / "b", s3_client=s3)
    assert from_archive["tree_digest"] == from_prefix["tree_digest"]

    with pytest.raises(PackagingError, match=r"Cannot read s3://models/missing.tar.gz \(NoSuchKey\)"):
        run("s3://models/missing.tar.gz", tmp_path / "c", s3_client=s3)
    assert_nothing_left(tmp_path / "c")


def assert_nothing_left(tmp_path):
    model_dir = tmp_path / "model"
    assert not model_dir.exists() or os.listdir(model_dir) == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ((404, b"nope"), r"HTTP 404 Not Found from .*check the handle's spelling and version"),
        ((500, b"boom"), r"HTTP 500 Internal Server Error from .*the server failed; retry later"),
        ("truncated", r"truncated or corrupt"),
        ((200, b"this is not gzip at all"), r"truncated or corrupt"),
        ((200, archive_with_member("/etc/evil", b"x")), r"Refusing unsafe archive member"),
        ((200, archive_with_member("../evil", b"x")), r"Refusing unsafe archive member"),
        ((200, archive_with_member("link", link_to="/etc/passwd")), r"it is a link"),
        ((200, archive_with_member("README.md", b"hello")), r"No SavedModel inside"),
    ],
)
def test_http_failures_say_what_to_do_and_leave_nothing(hub, text_archive, tmp_path, route, expected):
    if route == "truncated":
        route = (200, text_archive[: len(text_archive) // 2])
    hub.routes["/m/1"] = route
    with pytest.raises(PackagingError, match=expected):
        run(f"{hub.url}/m/1", tmp_path)
    assert_nothing_left(tmp_path)


def test_unreachable_host_suggests_s3(tmp_path):
    with pytest.raises(PackagingError, match=r"Cannot reach 127\.0\.0\.1:\d+ .*stage the archive in S3"):
        run(f"http://127.0.0.1:{closed_port()}/m/1", tmp_path)
    assert_nothing_left(tmp_path)


def test_missing_signature_lists_the_available_ones(text_model, tmp_path):
    with pytest.raises(PackagingError, match=r"no signature 'predict' .*it has: scale, serving_default"):
        run(str(text_model), tmp_path, signature="predict")
    assert_nothing_left(tmp_path)


def test_model_that_does_not_load_fails_before_any_endpoint(text_model, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes((text_model / "saved_model.pb").read_bytes())
    with pytest.raises(PackagingError, match=r"does not load with TensorFlow"):
        run(str(broken), tmp_path, verify_load=True)
    assert_nothing_left(tmp_path)


def test_model_written_by_a_newer_tf_than_serving_is_refused(text_model, tmp_path):
    with pytest.raises(PackagingError, match=r"newer than the serving image's 2\.1"):
        run(str(text_model), tmp_path, serving_tf_version="2.1")
    assert_nothing_left(tmp_path)


def test_sample_that_does_not_fit_the_signature_fails(text_model, tmp_path):
    with pytest.raises(PackagingError, match=r"sample input does not run through signature 'scale'"):
        run(str(text_model), tmp_path, signature="scale", sample_input=[["one", "two"]])
    assert_nothing_left(tmp_path)


HANDLERS = """
import json

def input_handler(data, context):
    return json.dumps({"instances": json.loads(data.read().decode())["texts"]})

def output_handler(response, context):
    return response.content, context.accept_header
"""


def test_inference_code_goes_to_code_inference_py(text_model, tmp_path):
    code = tmp_path / "handlers.py"
    code.write_text(HANDLERS)
    model_dir, record = run(str(text_model), tmp_path, inference_code=str(code))
    assert (model_dir / "code" / "inference.py").read_text() == HANDLERS
    # Served beside the model, so listed and hashed in the manifest too.
    assert [f["path"] for f in record["files"] if f["path"].startswith("code/")] == ["code/inference.py"]
    assert sorted(os.listdir(model_dir)) == ["code", "manifest.json", "text"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("def handler(data, context:\n    pass\n", r"does not compile: .*line 1"),
        ("def input_handler(data, context):\n    return data\n", r"defines neither handler\(\) nor both"),
    ],
)
def test_bad_inference_code_fails_and_leaves_nothing(text_model, tmp_path, text, expected):
    code = tmp_path / "handlers.py"
    code.write_text(text)
    with pytest.raises(PackagingError, match=expected):
        run(str(text_model), tmp_path, inference_code=str(code))
    assert_nothing_left(tmp_path)


def test_a_model_directory_that_is_not_empty_is_refused(text_model, tmp_path):
    (tmp_path / "model" / "text").mkdir(parents=True)
    with pytest.raises(PackagingError, match=r"already holds \['text'\]"):
        run(str(text_model), tmp_path)


def test_long_downloads_log_progress_every_64_mib():
    from packager.package import _Progress

    class Zeros:
        def __init__(self, total):
            self.left = total

        def read(self, size=-1):
            size = min(self.left, 10 << 20)
            self.left -= size
            return bytes(size)

    logged = []
    stream = _Progress(Zeros(200 << 20), logged.append)
    while stream.read(1 << 20):
        pass
    # One line each time a 64 MiB boundary is crossed (64, 128, 192).
    assert logged == ["  70 MiB received", "  130 MiB received", "  200 MiB received"]


def test_an_empty_folder_is_not_published(text_model, tmp_path):
    # An empty folder may reach S3 as a zero-byte "folder" object, which breaks the
    # deployment of an uncompressed model (S3ModelDataSource).
    source = tmp_path / "source"
    import shutil

    shutil.copytree(text_model, source)
    (source / "assets.extra" / "empty").mkdir(parents=True)
    model_dir, _ = run(str(source), tmp_path)
    folders = [path for path in model_dir.rglob("*") if path.is_dir()]
    assert folders and all(any(folder.iterdir()) for folder in folders)
    assert not (model_dir / "text" / "1" / "assets.extra").exists()
