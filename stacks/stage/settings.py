"""The raw settings of one stage in cdk.json (`stages.<name>`), as pydantic models.

Each model owns its keys' types, bounds and patterns, and the rules between
its own fields; a field's description is the "expected ..." text of its error
(`errors.py`) and its hover text in an editor (the JSON Schema, `json_schema.py`).
Rules that join a stage's parts (serving with deployment, region with keys) and
the dev fallbacks are `checks.py`'s and `config.py`'s.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from packaging_job.packager import contract
from packaging_job.packager.contract import DEFAULT_SIGNATURE, MODEL_NAME_ALLOWED, MODEL_NAME_PATTERN
from stacks.rulebook import limits
from stacks.stage.errors import Refused
from stacks.stage.fields import (
    EndpointInstanceType,
    NonEmpty,
    Omittable,
    TrainingInstanceType,
    hyperparameter,
    text,
    whole,
)
from stacks.stage.schema import rule_broken


class Settings(BaseModel):
    """Every settings object: no unknown keys, no coercion ("2" is no count, true no number)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ModelSettings(Settings):
    """`model`: the hub model and the name and version TF Serving serves it under."""

    # TF Serving discovers `<name>/<version>/saved_model.pb`; SageMaker names and S3 keys carry the name.
    name: Annotated[str, text(MODEL_NAME_PATTERN, MODEL_NAME_ALLOWED)]
    version: Annotated[int, whole(1, 2**31 - 1)]
    hub_handle: NonEmpty
    hub_sha256: Omittable[
        Annotated[str, text(r"^[0-9a-f]{64}$", "expected a sha256 (64 lowercase hex characters)")]
    ] = None

    @field_validator("hub_handle")
    @classmethod
    def _handle_scheme(cls, value: str) -> str:
        """https, s3, or plain http when the handle itself says so (the job never
        downgrades a redirect, `packager/source.py`), read as the job reads it
        (urlsplit). A local path is the job's too, but only for `make local`:
        SageMaker runs a stage's job, where no path of this machine exists."""
        try:
            parts = urlsplit(value)
        except ValueError:  # a malformed host, such as an unclosed IPv6 bracket
            parts = urlsplit("")
        reachable = parts.scheme in ("https", "http") and parts.netloc
        # s3://bucket/key.tar.gz is an archive, s3://bucket/prefix/ a tree; bare s3://bucket is
        # neither: the job's own test of an S3 handle decides, as it will at run time.
        in_s3 = contract.is_s3_handle(value) and contract.malformed_s3_handle(value) is None
        if not (reachable or in_s3):
            raise Refused(
                f"{value!r} is not allowed; use an https:// (or http://) URL or an s3://bucket/key URI "
                "(the job runs in SageMaker: a local path is for make local only)"
            )
        return hyperparameter(value)


# CloudFormation gives a custom resource one hour; provisioning the instance,
# downloading the image and uploading the artifact take the rest.
CLOUDFORMATION_LIMIT_MINUTES = 60
JOB_OVERHEAD_MINUTES = 15
MAX_JOB_MINUTES = CLOUDFORMATION_LIMIT_MINUTES - JOB_OVERHEAD_MINUTES - 5
_JOB_MINUTES_WHY = (
    f"with {JOB_OVERHEAD_MINUTES} minutes for provisioning and upload, the deploy must wait for the job "
    f"within CloudFormation's {CLOUDFORMATION_LIMIT_MINUTES}-minute limit for a custom resource"
)
# `packaging.limits` keys (the packager's `Limits` fields, its hyperparameters
# max-<key>) and their upper bounds: at most 1 TiB, a million files and folders, 10000:1.
LIMIT_BOUNDS = {"download_mb": 1 << 20, "model_mb": 1 << 20, "files": 1_000_000, "ratio": 10_000}


class LimitsSettings(Settings):
    """`packaging.limits`: bounds on the hub archive, each bounded so a typo never disables a check."""

    download_mb: Omittable[Annotated[int, whole(1, LIMIT_BOUNDS["download_mb"])]] = None
    model_mb: Omittable[Annotated[int, whole(1, LIMIT_BOUNDS["model_mb"])]] = None
    files: Omittable[Annotated[int, whole(1, LIMIT_BOUNDS["files"])]] = None
    ratio: Omittable[Annotated[int, whole(1, LIMIT_BOUNDS["ratio"])]] = None


class PackagingSettings(Settings):
    """`packaging`: the training job that packages the hub model on deploy."""

    instance_type: TrainingInstanceType
    volume_gb: Annotated[int, whole(1, 16384)]
    max_runtime_minutes: Annotated[
        int, whole(1, MAX_JOB_MINUTES, f"expected a whole number from 1 to {MAX_JOB_MINUTES}: {_JOB_MINUTES_WHY}")
    ]
    # Managed spot: SageMaker may wait this long in total for capacity.
    spot_max_wait_minutes: Omittable[
        Annotated[
            int,
            whole(
                1,
                MAX_JOB_MINUTES,
                f"expected a whole number from max_runtime_minutes to {MAX_JOB_MINUTES}: {_JOB_MINUTES_WHY}",
            ),
        ]
    ] = None
    volume_kms_key_arn: (
        Annotated[
            str,
            text(
                r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]{36}$",
                "expected a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)",
            ),
        ]
        | None
    ) = None
    signature: NonEmpty = DEFAULT_SIGNATURE
    sample_input: Any = Field(default=None, description="optional: JSON instances run through the model")
    verify_load: bool = True
    limits: LimitsSettings = Field(default_factory=LimitsSettings)

    @field_validator("signature")
    @classmethod
    def _signature_fits(cls, value: str) -> str:
        return hyperparameter(value)

    @field_validator("sample_input")
    @classmethod
    def _sample_fits(cls, value: Any) -> Any:
        # The handler JSON-encodes the sample, then the hyperparameter value again.
        if value is not None and len(json.dumps(json.dumps(value))) > limits.HYPERPARAMETER_MAX:
            raise Refused(
                rule_broken("hyperparameter-length", "...", "too long once encoded; use a few short instances")
            )
        return value

    @model_validator(mode="after")
    def _job_fits(self) -> Self:
        spot_wait = self.spot_max_wait_minutes
        if spot_wait is not None and spot_wait < self.max_runtime_minutes:
            allowed = f"expected a whole number from {self.max_runtime_minutes} to {MAX_JOB_MINUTES}"
            raise Refused(rule_broken("spot-wait", spot_wait, allowed), at=("spot_max_wait_minutes",))
        if self.volume_kms_key_arn and limits.has_instance_store(self.instance_type):
            raise Refused(
                rule_broken("instance-store-kms", self.volume_kms_key_arn, f"with instance type {self.instance_type}"),
                at=("volume_kms_key_arn",),
            )
        return self


INSTANCE_COUNT = (1, 100)
Count = Annotated[int, whole(*INSTANCE_COUNT)]


class AutoscalingSettings(Settings):
    """`serving.instances.autoscaling`: target tracking on invocations per instance."""

    min: Count
    max: Count
    invocations_per_instance: Annotated[int, whole(1, 100_000)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max < self.min:
            raise Refused(
                f"{self.max} is not allowed; expected a whole number from {self.min} to {INSTANCE_COUNT[1]}",
                at=("max",),
            )
        return self


class InstancesSettings(Settings):
    """`serving.instances`: a real-time endpoint on instances."""

    type: EndpointInstanceType
    count: Count
    autoscaling: Omittable[AutoscalingSettings] = None

    @model_validator(mode="after")
    def _count_within_scaling(self) -> Self:
        scaling = self.autoscaling
        if scaling and not scaling.min <= self.count <= scaling.max:
            raise Refused(
                f"the instance count {self.count} is not allowed outside min {scaling.min} and max {scaling.max}",
                at=("autoscaling",),
            )
        return self


_MEMORY_ALLOWED = f"allowed: {', '.join(map(str, limits.SERVERLESS_MEMORY_MB))} (SageMaker rule serverless-limits)"


def _on_memory_grid(memory: int) -> int:
    if memory not in limits.SERVERLESS_MEMORY_MB:
        raise Refused(f"{memory!r} is not allowed; {_MEMORY_ALLOWED}")
    return memory


class ServerlessSettings(Settings):
    """`serving.serverless`: a serverless endpoint."""

    memory_mb: Annotated[
        int,
        Field(strict=True, description=_MEMORY_ALLOWED, json_schema_extra={"enum": list(limits.SERVERLESS_MEMORY_MB)}),
        AfterValidator(_on_memory_grid),
    ]
    max_concurrency: Annotated[int, whole(*limits.SERVERLESS_MAX_CONCURRENCY)]

    @field_validator("max_concurrency", mode="before")
    @classmethod
    def _concurrency_within(cls, value: object) -> object:
        # Ahead of the field's bounds, so that the line names the rule.
        low, high = limits.SERVERLESS_MAX_CONCURRENCY
        if type(value) is int and not low <= value <= high:
            raise Refused(rule_broken("serverless-limits", value, f"expected a whole number from {low} to {high}"))
        return value


class ServingSettings(Settings):
    """`serving`: exactly one of instances or serverless."""

    instances: Omittable[InstancesSettings] = None
    serverless: Omittable[ServerlessSettings] = None

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        if len(self.model_fields_set) != 1:
            raise Refused(
                f"{sorted(self.model_fields_set)!r} is not allowed; set exactly one of 'instances' or 'serverless'"
            )
        return self
