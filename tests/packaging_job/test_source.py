"""Handle resolution: which URL is fetched, what is refused before any download, and S3 out of reach."""

from __future__ import annotations

import socket

import boto3
import pytest
from botocore.config import Config
from packager.errors import PackagingError
from packager.source import compressed_url, open_archive, resolve


@pytest.mark.parametrize(
    ("handle", "url"),
    [
        (
            "https://tfhub.dev/google/universal-sentence-encoder/4",
            "https://tfhub.dev/google/universal-sentence-encoder/4?tf-hub-format=compressed",
        ),
        (
            "https://www.kaggle.com/models/google/universal-sentence-encoder/TensorFlow2/universal-sentence-encoder/2",
            "https://www.kaggle.com/models/google/universal-sentence-encoder/TensorFlow2/universal-sentence-encoder/2?tf-hub-format=compressed",
        ),
        ("https://example.com/m?x=1", "https://example.com/m?x=1&tf-hub-format=compressed"),
        ("https://example.com/m.tar.gz", "https://example.com/m.tar.gz"),
        (
            "https://example.com/m?tf-hub-format=compressed",
            "https://example.com/m?tf-hub-format=compressed",
        ),
    ],
)
def test_http_handles_ask_for_the_compressed_format(handle, url):
    assert compressed_url(handle) == url
    assert resolve(handle).is_archive


def test_s3_archive_and_prefix():
    assert resolve("s3://b/models/use.tar.gz").is_archive
    assert not resolve("s3://b/models/use/").is_archive


def test_local_paths(tmp_path):
    archive = tmp_path / "m.tar.gz"
    archive.write_bytes(b"")
    assert resolve(str(archive)).is_archive
    assert not resolve(str(tmp_path)).is_archive
    with pytest.raises(PackagingError, match="does not exist"):
        resolve(str(tmp_path / "missing"))


def test_unsupported_scheme_names_the_supported_ones():
    with pytest.raises(PackagingError, match=r"Unsupported hub handle 'gs://b/m'.*s3:// URI"):
        resolve("gs://b/m")


def test_s3_out_of_reach_is_not_blamed_on_credentials():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends
    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(PackagingError) as caught:
        with open_archive(resolve("s3://models/m.tar.gz"), s3_client=s3):
            pass
    message = str(caught.value)
    assert message.startswith("Cannot reach S3 for s3://models/m.tar.gz: ")
    assert "credentials" not in message
