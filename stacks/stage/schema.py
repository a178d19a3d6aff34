"""The stage's settings as frozen objects, and the one-line error a bad setting raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from packaging_job.packager.archive import Limits
from stacks.rulebook import RULES
from stacks.stage.names import StageNames

ARTIFACTS_PREFIX = "artifacts/"


class ConfigError(ValueError):
    """A stage setting is missing or not allowed; the message is one line."""


def rule_broken(rule_id: str, value: Any, detail: str = "") -> str:
    """What follows the key of a setting that breaks a rule: value, and the rule with its document."""
    why = f" ({detail})" if detail else ""
    return f"{value!r} is not allowed{why}; {RULES[rule_id]}"


def breaks_rule(rule_id: str, key: str, value: Any, detail: str = "") -> ConfigError:
    """A setting that breaks a rule: key, value, and the rule with its document."""
    return ConfigError(f"{key}: {rule_broken(rule_id, value, detail)}")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    version: int
    hub_handle: str
    # The sha256 the downloaded archive must have; None trusts the handle's server.
    hub_sha256: str | None = None


@dataclass(frozen=True)
class InstanceServing:
    instance_type: str
    instance_count: int
    autoscaling: Autoscaling | None = None


@dataclass(frozen=True)
class Autoscaling:
    """Target tracking on SageMakerVariantInvocationsPerInstance."""

    min_instances: int
    max_instances: int
    invocations_per_instance: int


@dataclass(frozen=True)
class Deployment:
    """How an endpoint update shifts traffic: blue/green, rolled back on alarms."""

    strategy: str  # all_at_once | canary | linear
    step_instances: int | None  # CapacitySize INSTANCE_COUNT
    wait_minutes: int


@dataclass(frozen=True)
class Alarms:
    emails: tuple[str, ...]
    max_model_latency_ms: int
    max_5xx_errors: int


@dataclass(frozen=True)
class ServerlessServing:
    memory_mb: int
    max_concurrency: int


@dataclass(frozen=True)
class PackagingConfig:
    """How the training job that packages the hub model runs."""

    instance_type: str
    volume_gb: int
    max_runtime_minutes: int
    # Managed spot: SageMaker may wait this long in total for capacity.
    spot_max_wait_minutes: int | None
    volume_kms_key_arn: str | None
    signature: str
    sample_input: Any | None
    verify_load: bool
    # Bounds on the hub archive; the keys of `packaging.limits`.
    limits: Limits = Limits()

    @property
    def budget_minutes(self) -> int:
        """The longest the job itself may take, waiting for spot included."""
        return self.spot_max_wait_minutes or self.max_runtime_minutes


@dataclass(frozen=True)
class StageConfig:
    project: str
    stage: str
    account: str | None
    region: str
    model: ModelConfig
    serving: InstanceServing | ServerlessServing
    # Exactly one of the two: package the hub model with a training job during
    # deploy, or serve an artifact already in the stage bucket (promotions):
    # a `model.tar.gz` key or an uncompressed prefix ending in `/`.
    packaging: PackagingConfig | None
    pinned_artifact_key: str | None
    # The pinned artifact's tree digest, when a promotion says it: the serving
    # stack reports it so the next promotion can verify what it copies.
    pinned_artifact_digest: str | None
    retain_data: bool
    tags: tuple[tuple[str, str], ...]
    deployment: Deployment | None = None
    alarms: Alarms | None = None
    data_capture_percent: int | None = None
    # Hours without invocations after which an instance-backed endpoint is taken down.
    idle_teardown_hours: int | None = None
    # Principals (IAM role or user ARNs) that may assume the stage's promotion role;
    # empty: any principal of the stage's account its own IAM policy lets assume it.
    promoters: tuple[str, ...] = ()

    @property
    def names(self) -> StageNames:
        """Every name the stage's parts find each other by (`names.py`)."""
        return StageNames(self.project, self.stage)

    @property
    def endpoint_name(self) -> str:
        return self.names.endpoint

    @property
    def is_serverless(self) -> bool:
        return isinstance(self.serving, ServerlessServing)

    @property
    def packaging_compression(self) -> str:
        """OutputDataConfig.CompressionType of the packaging job: serverless endpoints
        take only a model.tar.gz (rule serverless-model-data); instances read the
        uncompressed prefix, with no gzip on either side."""
        return "GZIP" if self.is_serverless else "NONE"

    @property
    def alarm_names(self) -> tuple[str, str]:
        """The 5XX and model-latency alarms, named so the execution role (in the storage
        stack) may describe exactly them for auto-rollback (rule rollback-alarms)."""
        return f"{self.endpoint_name}-5xx-errors", f"{self.endpoint_name}-model-latency"

    @property
    def rolls_back_on_alarms(self) -> bool:
        return self.deployment is not None and self.alarms is not None

    @property
    def storage_stack_name(self) -> str:
        return self.names.storage_stack

    @property
    def serving_stack_name(self) -> str:
        return self.names.serving_stack

    @property
    def job_name_prefix(self) -> str:
        return self.names.job_name_prefix

    @property
    def resource_tags(self) -> tuple[tuple[str, str], ...]:
        """Every tag of the stage's resources, the project and stage tags included."""
        return tuple(sorted({**dict(self.tags), "project": self.project, "stage": self.stage}.items()))

    @property
    def instance_type(self) -> str | None:
        """The endpoint's instance type; None when serverless."""
        return self.serving.instance_type if isinstance(self.serving, InstanceServing) else None
