"""How the packaging job is called: the script SageMaker runs, the hyperparameters it
reads, and the signature it checks when told none.

It ships with the job, whose `train.py` parses these names. The packaging handler
ships apart from it and receives them in its environment (the construct builds it
from this module, `stacks/model_packaging/job_contract.py`); `make local` calls the
job by them too.
"""

from __future__ import annotations

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
