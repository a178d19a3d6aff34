"""The model and its packaging job's settings: the hub handle, pins, limits, time budget."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from packaging_job.packager.archive import Limits
from stacks.rulebook import limits
from stacks.stage.fields import integer, no_unknown_keys, string
from stacks.stage.schema import ConfigError, ModelConfig, PackagingConfig, breaks_rule

# TF Serving discovers `<model_name>/<version>/saved_model.pb`; SageMaker names
# and S3 keys must be able to carry the model name too.
_MODEL_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_-]{0,62})$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def read_model(raw: Mapping[str, Any], where: str) -> ModelConfig:
    no_unknown_keys(raw, where, {"name", "version", "hub_handle", "hub_sha256"})
    name = string(raw, "name", f"{where}.name")
    if not _MODEL_NAME.fullmatch(name):
        raise ConfigError(
            f"{where}.name: {name!r} is not allowed; use letters, digits, '-' and '_' "
            "(63 characters at most, starting with a letter or digit)"
        )
    return ModelConfig(
        name=name,
        version=integer(raw, "version", f"{where}.version", low=1, high=2**31 - 1),
        hub_handle=hub_handle(string(raw, "hub_handle", f"{where}.hub_handle"), f"{where}.hub_handle"),
        hub_sha256=sha256(raw["hub_sha256"], f"{where}.hub_sha256") if "hub_sha256" in raw else None,
    )


def hub_handle(value: str, key: str) -> str:
    """https, s3 or a local path; plain http only when the handle itself says so
    (the job never downgrades a redirect, `packager/source.py`)."""
    scheme = value.partition("://")[0].lower() if "://" in value else ""
    if scheme not in ("", "https", "http", "s3"):
        raise ConfigError(f"{key}: {value!r} is not allowed; use an https://, http:// or s3:// handle")
    return hyperparameter(value, key)


def sha256(value: Any, key: str) -> str:
    if not isinstance(value, str) or not SHA256.fullmatch(value):
        raise ConfigError(f"{key}: {value!r} is not allowed; expected a sha256 (64 lowercase hex characters)")
    return value


def hyperparameter(value: str, key: str) -> str:
    """A value the packaging job receives as a hyperparameter (JSON-encoded once)."""
    if len(json.dumps(value)) > limits.HYPERPARAMETER_MAX:
        raise breaks_rule("hyperparameter-length", key, value[:40] + "...", f"{len(value)} characters")
    return value


# CloudFormation gives a custom resource one hour; provisioning the instance,
# downloading the image and uploading the artifact take the rest.
CLOUDFORMATION_LIMIT_MINUTES = 60
JOB_OVERHEAD_MINUTES = 15
MAX_JOB_MINUTES = CLOUDFORMATION_LIMIT_MINUTES - JOB_OVERHEAD_MINUTES - 5
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]{36}$")


def read_packaging(raw: Any, where: str) -> PackagingConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {raw!r} is not allowed; expected an object")
    no_unknown_keys(
        raw,
        where,
        {
            "instance_type",
            "volume_gb",
            "max_runtime_minutes",
            "spot_max_wait_minutes",
            "volume_kms_key_arn",
            "signature",
            "sample_input",
            "verify_load",
            "limits",
        },
    )
    instance_type = string(raw, "instance_type", f"{where}.instance_type")
    if not limits.INSTANCE_TYPE.fullmatch(instance_type):
        raise ConfigError(
            f"{where}.instance_type: {instance_type!r} is not allowed; expected a SageMaker "
            "instance type such as 'ml.m5.xlarge' (it starts with 'ml.')"
        )
    runtime = job_minutes(raw, "max_runtime_minutes", where, low=1)
    spot_wait = None
    if "spot_max_wait_minutes" in raw:
        # SageMaker requires MaxWaitTimeInSeconds >= MaxRuntimeInSeconds.
        spot_wait = job_minutes(raw, "spot_max_wait_minutes", where, low=runtime)
    key_arn = raw.get("volume_kms_key_arn")
    if key_arn is not None and (not isinstance(key_arn, str) or not _KMS_KEY_ARN.fullmatch(key_arn)):
        raise ConfigError(
            f"{where}.volume_kms_key_arn: {key_arn!r} is not allowed; expected a KMS key ARN "
            "(arn:aws:kms:REGION:ACCOUNT:key/ID)"
        )
    if key_arn and limits.has_instance_store(instance_type):
        raise breaks_rule(
            "instance-store-kms", f"{where}.volume_kms_key_arn", key_arn, f"with instance type {instance_type}"
        )
    sample = raw.get("sample_input")
    # The handler JSON-encodes the sample, then the hyperparameter value again.
    if sample is not None and len(json.dumps(json.dumps(sample))) > limits.HYPERPARAMETER_MAX:
        raise breaks_rule(
            "hyperparameter-length", f"{where}.sample_input", "...", "too long once encoded; use a few short instances"
        )
    verify_load = raw.get("verify_load", True)
    if not isinstance(verify_load, bool):
        raise ConfigError(f"{where}.verify_load: {verify_load!r} is not allowed; allowed: true, false")
    return PackagingConfig(
        instance_type=instance_type,
        volume_gb=integer(raw, "volume_gb", f"{where}.volume_gb", 1, 16384),
        max_runtime_minutes=runtime,
        spot_max_wait_minutes=spot_wait,
        volume_kms_key_arn=key_arn,
        signature=hyperparameter(string(raw, "signature", f"{where}.signature"), f"{where}.signature")
        if "signature" in raw
        else "serving_default",
        sample_input=sample,
        verify_load=verify_load,
        limits=read_limits(raw.get("limits", {}), f"{where}.limits"),
    )


# `packaging.limits` keys (the packager's `Limits` fields, its hyperparameters
# max-<key>) and their upper bounds: at most 1 TiB, a million files, 10000:1.
LIMIT_BOUNDS = {"download_mb": 1 << 20, "model_mb": 1 << 20, "files": 1_000_000, "ratio": 10_000}


def read_limits(raw: Any, where: str) -> Limits:
    """`packaging.limits`: every key optional, each bounded so a typo never disables a check."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {raw!r} is not allowed; expected an object")
    no_unknown_keys(raw, where, set(LIMIT_BOUNDS))
    return Limits(
        **{key: integer(raw, key, f"{where}.{key}", 1, high) for key, high in LIMIT_BOUNDS.items() if key in raw}
    )


def job_minutes(raw: Mapping[str, Any], key: str, where: str, low: int) -> int:
    value = integer(raw, key, f"{where}.{key}", low, 24 * 60)
    if value > MAX_JOB_MINUTES:
        raise ConfigError(
            f"{where}.{key}: {value} is not allowed; at most {MAX_JOB_MINUTES}: with "
            f"{JOB_OVERHEAD_MINUTES} minutes for provisioning and upload, the deploy must wait "
            f"for the job within CloudFormation's {CLOUDFORMATION_LIMIT_MINUTES}-minute limit "
            "for a custom resource"
        )
    return value
