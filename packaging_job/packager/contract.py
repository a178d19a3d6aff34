"""How the packaging job is called: the script SageMaker runs, the hyperparameters it
reads, and the signature it checks when told none.

It ships with the job, whose `train.py` parses these names. The packaging handler
ships apart from it and receives them in its environment (the construct builds it
from this module, `stacks/model_packaging/job_contract.py`); `make local` calls the
job by them too.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

# `sagemaker_program`: the script the training toolkit runs from the submit directory.
PROGRAM = "train.py"
# TensorFlow's DEFAULT_SERVING_SIGNATURE_DEF_KEY, the signature TF Serving answers
# when a request names none. Spelled here so the job's contract needs no TensorFlow.
DEFAULT_SIGNATURE = "serving_default"
# The model name becomes a folder (TF Serving's `<name>/<version>/`), part of
# SageMaker names and of S3 keys: the characters all three accept.
MODEL_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$"
MODEL_NAME_ALLOWED = "use letters, digits, '-' and '_' (63 characters at most, starting with a letter or digit)"

HUB_HANDLE = "hub-handle"
MODEL_NAME = "model-name"
MODEL_VERSION = "model-version"
SIGNATURE = "signature"
SAMPLE_INPUT = "sample-input"
VERIFY_LOAD = "verify-load"
SERVING_TF_VERSION = "serving-tf-version"
HUB_SHA256 = "hub-sha256"
# Each archive limit (a field of `archive.Limits`) and the hyperparameter that sets it.
LIMITS = {
    "download_mb": "max-download-mb",
    "model_mb": "max-model-mb",
    "files": "max-files",
    "ratio": "max-ratio",
}


def is_s3_handle(handle: str) -> bool:
    """Whether the job reads `handle` from S3: its scheme, as urlsplit reads it
    (lowercased, so `S3://` too), is s3, as `source.resolve` decides it."""
    return _parts(handle).scheme == "s3"


def malformed_s3_handle(handle: str) -> str | None:
    """The one line refusing an S3 handle that names no bucket or no key
    (`s3:/x`, `s3://bucket`); None for any other handle. The stage's schema
    requires the same at synth (`stacks/stage/settings.py`)."""
    parts = _parts(handle)
    if parts.scheme != "s3" or (parts.netloc and parts.path):
        return None
    return (
        f"Hub handle {handle!r} is not an S3 URI the job can read: write s3://bucket/key "
        "(an archive, such as model.tar.gz) or s3://bucket/prefix/ (a SavedModel folder)."
    )


def _parts(handle: str) -> SplitResult:
    handle = handle.strip()
    try:
        return urlsplit(handle)
    except ValueError:
        # A malformed host (an unclosed IPv6 bracket): the scheme alone, and no bucket.
        return urlsplit(handle.partition("//")[0])
