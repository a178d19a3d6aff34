"""Handle resolution: which URL is fetched, and what is refused before any download."""

from __future__ import annotations

import pytest
from packager.errors import PackagingError
from packager.source import compressed_url, resolve


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
