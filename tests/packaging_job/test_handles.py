"""Which hub handles the job reads from S3, decided once (`packager/contract.py`)
for train.py and `make local`, as `packager/source.py` resolves them: by the
urlsplit scheme, in any case; one without a bucket or a key is refused in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from packager import contract

from tests.packaging_job.conftest import JOB_DIR

REFUSAL = (
    "Hub handle {!r} is not an S3 URI the job can read: write s3://bucket/key (an archive, such as "
    "model.tar.gz) or s3://bucket/prefix/ (a SavedModel folder)."
)


@pytest.mark.parametrize(
    "handle, from_s3, refused",
    [
        ("s3://bucket/model.tar.gz", True, False),
        ("S3://bucket/model.tar.gz", True, False),
        (" s3://bucket/prefix/", True, False),
        ("s3:/x", True, True),
        ("s3:bucket/key", True, True),
        ("s3://bucket", True, True),
        ("s3://[bucket/key", True, True),
        ("https://tfhub.dev/google/model/1", False, False),
        ("models/s3:/x", False, False),
        ("file:models/m", False, False),
    ],
)
def test_an_s3_handle_is_its_scheme_and_needs_a_bucket_and_a_key(handle, from_s3, refused):
    assert contract.is_s3_handle(handle) is from_s3
    assert contract.malformed_s3_handle(handle) == (REFUSAL.format(handle) if refused else None)


@pytest.mark.parametrize(
    "handle, failure",
    [
        ("s3:/x", REFUSAL.format("s3:/x")),
        # Read from S3 like its lower-case form: here, without credentials, S3's own refusal.
        (
            "S3://bucket/model.tar.gz",
            "Cannot read s3://bucket/model.tar.gz: Unable to locate credentials. Run with AWS credentials "
            "that may read it (inside SageMaker, the execution role's).",
        ),
    ],
)
def test_the_job_ends_a_mistyped_or_upper_case_s3_handle_in_its_own_line(tmp_path, handle, failure):
    output = tmp_path / "output"
    result = subprocess.run(
        [sys.executable, str(JOB_DIR / "train.py"), "--hub-handle", handle, "--model-name", "m"],
        env={
            "HOME": str(tmp_path),
            "AWS_EC2_METADATA_DISABLED": "true",
            "SM_MODEL_DIR": str(tmp_path / "model"),
            "SM_OUTPUT_DIR": str(output),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.splitlines()[-1] == f"[packaging] failed: {failure}"
    assert (output / "failure").read_text() == failure
