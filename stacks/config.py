"""Stage configuration: the one validated, frozen object each stage is built from.

`cdk.json` context holds the raw settings (`project`, `stages.<name>`). This
module turns one stage's raw settings into a `StageConfig` or raises a
`ConfigError` whose single line names the key, the bad value and what is
allowed. Nothing here reads the environment or calls AWS: `app.py` passes the
fallback account and region in.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
from dataclasses import dataclass
from typing import Any, Mapping

from packaging_job.packager.archive import Limits
from stacks import images
from stacks.region import environment_region
from stacks.rulebook import RULES, limits

# TF Serving discovers `<model_name>/<version>/saved_model.pb`; SageMaker names
# and S3 keys must be able to carry the model name too.
_MODEL_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_-]{0,62})$")
# SageMaker endpoint names: alphanumerics and hyphens, 63 characters at most.
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](?:-*[a-zA-Z0-9])*$")
# The project also starts stack names, which must begin with a letter.
_PROJECT = re.compile(r"^[a-zA-Z](?:-*[a-zA-Z0-9])*$")
_ENDPOINT_NAME_MAX = 63
_ACCOUNT = re.compile(r"^\d{12}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# An IAM role or user that may assume the promotion role (ArnLike patterns allowed).
_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/*-]+$")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$")

INSTANCE_COUNT = (1, 100)
REMOVAL_POLICIES = ("destroy", "retain")
ARTIFACTS_PREFIX = "artifacts/"
_ARTIFACT_SUFFIXES = (".tar.gz", "/")


class ConfigError(ValueError):
    """A stage setting is missing or not allowed; the message is one line."""


def breaks_rule(rule_id: str, key: str, value: Any, detail: str = "") -> ConfigError:
    """A setting that breaks a rule: key, value, and the rule with its document."""
    rule = RULES[rule_id]
    why = f" ({detail})" if detail else ""
    return ConfigError(
        f"{key}: {value!r} is not allowed{why}; {rule}"
    )


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
    autoscaling: "Autoscaling | None" = None


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
    def endpoint_name(self) -> str:
        return f"{self.project}-{self.stage}"

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
        return f"{self.project}-{self.stage}-storage"

    @property
    def serving_stack_name(self) -> str:
        return f"{self.project}-{self.stage}-serving"

    @property
    def job_name_prefix(self) -> str:
        """Prefix of this stage's packaging job names (IAM scopes to `<prefix>-*`).

        The endpoint name, cut to 27 characters, then 8 hex characters of its
        sha256: two stages never share a prefix however long their names, and no
        stage's prefix begins another's (a hex digest is never `pkg`). With the
        job digest and an attempt suffix, names stay within SageMaker's 63.
        """
        tag = hashlib.sha256(self.endpoint_name.encode()).hexdigest()[:8]
        return f"{self.endpoint_name[:27].rstrip('-')}-{tag}-pkg"

    @property
    def resource_tags(self) -> tuple[tuple[str, str], ...]:
        """Every tag of the stage's resources, the project and stage tags included."""
        return tuple(sorted({**dict(self.tags), "project": self.project, "stage": self.stage}.items()))

    @property
    def instance_type(self) -> str | None:
        """The endpoint's instance type; None when serverless."""
        return self.serving.instance_type if isinstance(self.serving, InstanceServing) else None


def load_stage_config(
    context: Mapping[str, Any],
    stage: str,
    *,
    default_account: str | None = None,
    default_region: str | None = None,
    artifact: str | None = None,
    artifact_digest: str | None = None,
) -> StageConfig:
    """Validate `context` (cdk.json's context) for `stage`.

    `artifact` (`cdk deploy -c artifact=KEY -c artifact_digest=SHA256`, as
    promotions deploy) serves that key of the stage bucket instead of what the
    stage's config says, and reports its digest.

    Only the dev stage may take its account and region from the fallbacks
    (`CDK_DEFAULT_ACCOUNT` and the region rule of `stacks/region.py`, applied by
    app.py): staging and prod must name theirs so a promotion never lands in the
    wrong account.
    """
    project = _string(context, "project", "project")
    if not _PROJECT.match(project):
        raise ConfigError(
            f"project: {project!r} is not allowed; start with a letter, then letters, "
            "digits and hyphens (no trailing hyphen)"
        )
    stages = context.get("stages")
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError("stages: missing; declare at least one stage in cdk.json context")
    if stage not in stages:
        raise ConfigError(
            f"stage: {stage!r} is not declared; allowed: {', '.join(sorted(stages))}"
        )
    endpoint_name = f"{project}-{stage}"
    if len(endpoint_name) > _ENDPOINT_NAME_MAX or not _ENDPOINT_NAME.match(endpoint_name):
        raise ConfigError(
            f"stage: {stage!r} makes endpoint name {endpoint_name!r}, which is not a valid "
            f"SageMaker endpoint name (letters, digits, hyphens, {_ENDPOINT_NAME_MAX} "
            "characters at most)"
        )

    raw = _mapping(stages, stage, f"stages.{stage}")
    where = f"stages.{stage}"
    packages = "packaging" in raw
    if artifact is not None:
        raw = {key: value for key, value in raw.items() if key != "packaging"}
        raw["pinned_artifact"] = artifact
    _no_unknown_keys(
        raw,
        where,
        {
            "account",
            "region",
            "model",
            "serving",
            "packaging",
            "pinned_artifact",
            "removal_policy",
            "tags",
            "deployment",
            "alarms",
            "data_capture",
            "cost_guard",
            "promoters",
        },
    )
    if ("packaging" in raw) == ("pinned_artifact" in raw):
        raise ConfigError(
            f"{where}: set exactly one of 'packaging' (run the packaging job on deploy) or "
            "'pinned_artifact' (serve an artifact already in the stage bucket)"
        )
    may_fall_back = stage == "dev"
    account = _account(raw, where, default_account, may_fall_back)
    region = _region(raw, where, default_region, may_fall_back)
    model = _model(_mapping(raw, "model", f"{where}.model"), f"{where}.model")
    serving = _serving(_mapping(raw, "serving", f"{where}.serving"), f"{where}.serving")
    serverless = isinstance(serving, ServerlessServing)
    if serverless and region not in limits.SERVERLESS_REGIONS:
        raise breaks_rule("serverless-regions", f"{where}.region", region,
                          f"available in {', '.join(sorted(limits.SERVERLESS_REGIONS))}")
    pinned = None
    if "pinned_artifact" in raw:
        key = "artifact (-c artifact=...)" if artifact is not None else f"{where}.pinned_artifact"
        pinned = _pinned_artifact(raw["pinned_artifact"], key)
        if serverless and pinned.endswith("/"):
            raise breaks_rule("serverless-model-data", key, pinned, "stage serves serverless")
    return StageConfig(
        project=project,
        stage=stage,
        account=account,
        region=region,
        model=model,
        serving=serving,
        packaging=_packaging(raw["packaging"], f"{where}.packaging")
        if "packaging" in raw
        else None,
        pinned_artifact_key=pinned,
        pinned_artifact_digest=_digest(artifact_digest, artifact),
        retain_data=_choice(raw, "removal_policy", where, REMOVAL_POLICIES) == "retain",
        tags=_tags(raw.get("tags", {}), f"{where}.tags"),
        promoters=_promoters(raw.get("promoters", []), f"{where}.promoters"),
        **_production(raw, where, serving, packages),
    )


def read_context(cdk_json: pathlib.Path) -> Mapping[str, Any]:
    """cdk.json's `context`, or a one-line ConfigError saying what is wrong with the file."""
    try:
        document = json.loads(pathlib.Path(cdk_json).read_text())
    except OSError as error:
        raise ConfigError(f"{cdk_json}: cannot be read ({error.strerror})") from error
    except ValueError as error:
        raise ConfigError(f"{cdk_json}: not valid JSON ({error})") from error
    context = document.get("context") if isinstance(document, dict) else None
    if not isinstance(context, Mapping):
        raise ConfigError(f"{cdk_json}: no 'context' object; the stages live under context.stages")
    return context


def stage_names(cdk_json: pathlib.Path) -> list[str]:
    """The stages cdk.json declares, in its order."""
    stages = read_context(cdk_json).get("stages")
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError("stages: missing; declare at least one stage in cdk.json context")
    return list(stages)


def load_from_cdk_json(
    cdk_json: pathlib.Path, stage: str, environ: Mapping[str, str]
) -> StageConfig:
    """The stage's config for the command-line tools, its region by the region rule."""
    return load_stage_config(
        read_context(cdk_json), stage, default_region=environment_region(environ)
    )


def _account(
    raw: Mapping[str, Any], where: str, fallback: str | None, may_fall_back: bool
) -> str | None:
    value = raw.get("account")
    if value is None and may_fall_back:
        if fallback is None:
            # dev with no account anywhere synthesizes an account-agnostic template.
            return None
        value = fallback
    if value is None:
        raise ConfigError(f"{where}.account: missing; set the 12-digit AWS account id")
    if not isinstance(value, str) or not _ACCOUNT.match(value):
        raise ConfigError(f"{where}.account: {value!r} is not allowed; expected a 12-digit account id")
    return value


def _region(
    raw: Mapping[str, Any], where: str, fallback: str | None, may_fall_back: bool
) -> str:
    value = raw.get("region")
    if value is None:
        value = fallback if may_fall_back else None
        if value is None:
            raise ConfigError(f"{where}.region: missing; set it in cdk.json")
    allowed = images.supported_regions()
    if value not in allowed:
        raise ConfigError(
            f"{where}.region: {value!r} is not allowed; the TF Serving image "
            f"{images.SERVING_TF_VERSION} exists in: {', '.join(allowed)}"
        )
    return value


def _model(raw: Mapping[str, Any], where: str) -> ModelConfig:
    _no_unknown_keys(raw, where, {"name", "version", "hub_handle", "hub_sha256"})
    name = _string(raw, "name", f"{where}.name")
    if not _MODEL_NAME.match(name):
        raise ConfigError(
            f"{where}.name: {name!r} is not allowed; use letters, digits, '-' and '_' "
            "(63 characters at most, starting with a letter or digit)"
        )
    return ModelConfig(
        name=name,
        version=_integer(raw, "version", f"{where}.version", low=1, high=2**31 - 1),
        hub_handle=_hub_handle(_string(raw, "hub_handle", f"{where}.hub_handle"), f"{where}.hub_handle"),
        hub_sha256=_sha256(raw["hub_sha256"], f"{where}.hub_sha256") if "hub_sha256" in raw else None,
    )


def _hub_handle(value: str, key: str) -> str:
    """https, s3 or a local path; plain http only when the handle itself says so
    (the job never downgrades a redirect, `packager/source.py`)."""
    scheme = value.partition("://")[0].lower() if "://" in value else ""
    if scheme not in ("", "https", "http", "s3"):
        raise ConfigError(f"{key}: {value!r} is not allowed; use an https://, http:// or s3:// handle")
    return _hyperparameter(value, key)


def _sha256(value: Any, key: str) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise ConfigError(f"{key}: {value!r} is not allowed; expected a sha256 (64 lowercase hex characters)")
    return value


def _promoters(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and _PRINCIPAL_ARN.match(v) for v in value):
        raise ConfigError(
            f"{key}: {value!r} is not allowed; expected a list of IAM role or user ARNs "
            "(arn:aws:iam::ACCOUNT:role/NAME), the principals that run promotions to this stage"
        )
    return tuple(value)


def _hyperparameter(value: str, key: str) -> str:
    """A value the packaging job receives as a hyperparameter (JSON-encoded once)."""
    if len(json.dumps(value)) > limits.HYPERPARAMETER_MAX:
        raise breaks_rule("hyperparameter-length", key, value[:40] + "...", f"{len(value)} characters")
    return value


def _serving(raw: Mapping[str, Any], where: str) -> InstanceServing | ServerlessServing:
    modes = {"instances", "serverless"}
    _no_unknown_keys(raw, where, modes)
    if len(raw) != 1:
        raise ConfigError(
            f"{where}: {sorted(raw)!r} is not allowed; set exactly one of 'instances' or 'serverless'"
        )
    if "instances" in raw:
        sub = f"{where}.instances"
        inst = _mapping(raw, "instances", sub)
        _no_unknown_keys(inst, sub, {"type", "count", "autoscaling"})
        instance_type = _string(inst, "type", f"{sub}.type")
        if not limits.INSTANCE_TYPE.match(instance_type):
            raise ConfigError(
                f"{sub}.type: {instance_type!r} is not allowed; expected a SageMaker "
                "instance type such as 'ml.m5.large' (it starts with 'ml.')"
            )
        count = _integer(inst, "count", f"{sub}.count", *INSTANCE_COUNT)
        return InstanceServing(
            instance_type=instance_type,
            instance_count=count,
            autoscaling=_autoscaling(inst["autoscaling"], f"{sub}.autoscaling", count)
            if "autoscaling" in inst
            else None,
        )
    sub = f"{where}.serverless"
    sls = _mapping(raw, "serverless", sub)
    _no_unknown_keys(sls, sub, {"memory_mb", "max_concurrency"})
    memory = _integer(sls, "memory_mb", f"{sub}.memory_mb", low=1, high=10**6)
    if memory not in limits.SERVERLESS_MEMORY_MB:
        raise ConfigError(
            f"{sub}.memory_mb: {memory!r} is not allowed; allowed: "
            f"{', '.join(map(str, limits.SERVERLESS_MEMORY_MB))} (SageMaker rule serverless-limits)"
        )
    return ServerlessServing(
        memory_mb=memory,
        max_concurrency=_integer(
            sls, "max_concurrency", f"{sub}.max_concurrency", *limits.SERVERLESS_MAX_CONCURRENCY
        ),
    )


# CloudFormation gives a custom resource one hour; provisioning the instance,
# downloading the image and uploading the artifact take the rest.
CLOUDFORMATION_LIMIT_MINUTES = 60
JOB_OVERHEAD_MINUTES = 15
MAX_JOB_MINUTES = CLOUDFORMATION_LIMIT_MINUTES - JOB_OVERHEAD_MINUTES - 5
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]{36}$")


def _packaging(raw: Any, where: str) -> PackagingConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {raw!r} is not allowed; expected an object")
    _no_unknown_keys(
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
    instance_type = _string(raw, "instance_type", f"{where}.instance_type")
    if not limits.INSTANCE_TYPE.match(instance_type):
        raise ConfigError(
            f"{where}.instance_type: {instance_type!r} is not allowed; expected a SageMaker "
            "instance type such as 'ml.m5.xlarge' (it starts with 'ml.')"
        )
    runtime = _job_minutes(raw, "max_runtime_minutes", where, low=1)
    spot_wait = None
    if "spot_max_wait_minutes" in raw:
        # SageMaker requires MaxWaitTimeInSeconds >= MaxRuntimeInSeconds.
        spot_wait = _job_minutes(raw, "spot_max_wait_minutes", where, low=runtime)
    key_arn = raw.get("volume_kms_key_arn")
    if key_arn is not None and (not isinstance(key_arn, str) or not _KMS_KEY_ARN.match(key_arn)):
        raise ConfigError(
            f"{where}.volume_kms_key_arn: {key_arn!r} is not allowed; expected a KMS key ARN "
            "(arn:aws:kms:REGION:ACCOUNT:key/ID)"
        )
    if key_arn and limits.has_instance_store(instance_type):
        raise breaks_rule("instance-store-kms", f"{where}.volume_kms_key_arn", key_arn,
                          f"with instance type {instance_type}")
    sample = raw.get("sample_input")
    # The handler JSON-encodes the sample, then the hyperparameter value again.
    if sample is not None and len(json.dumps(json.dumps(sample))) > limits.HYPERPARAMETER_MAX:
        raise breaks_rule("hyperparameter-length", f"{where}.sample_input", "...",
                          "too long once encoded; use a few short instances")
    verify_load = raw.get("verify_load", True)
    if not isinstance(verify_load, bool):
        raise ConfigError(f"{where}.verify_load: {verify_load!r} is not allowed; allowed: true, false")
    return PackagingConfig(
        instance_type=instance_type,
        volume_gb=_integer(raw, "volume_gb", f"{where}.volume_gb", 1, 16384),
        max_runtime_minutes=runtime,
        spot_max_wait_minutes=spot_wait,
        volume_kms_key_arn=key_arn,
        signature=_hyperparameter(_string(raw, "signature", f"{where}.signature"), f"{where}.signature")
        if "signature" in raw
        else "serving_default",
        sample_input=sample,
        verify_load=verify_load,
        limits=_limits(raw.get("limits", {}), f"{where}.limits"),
    )


# `packaging.limits` keys (the packager's `Limits` fields, its hyperparameters
# max-<key>) and their upper bounds: at most 1 TiB, a million files, 10000:1.
LIMIT_BOUNDS = {"download_mb": 1 << 20, "model_mb": 1 << 20, "files": 1_000_000, "ratio": 10_000}


def _limits(raw: Any, where: str) -> Limits:
    """`packaging.limits`: every key optional, each bounded so a typo never disables a check."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {raw!r} is not allowed; expected an object")
    _no_unknown_keys(raw, where, set(LIMIT_BOUNDS))
    return Limits(**{key: _integer(raw, key, f"{where}.{key}", 1, high) for key, high in LIMIT_BOUNDS.items()
                     if key in raw})


def _digest(digest: str | None, artifact: str | None) -> str | None:
    if digest is None:
        return None
    if artifact is None or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(
            f"artifact_digest: {digest!r} is not allowed; a sha256 tree digest (64 hex "
            "characters), given together with -c artifact=KEY"
        )
    return digest


def _job_minutes(raw: Mapping[str, Any], key: str, where: str, low: int) -> int:
    value = _integer(raw, key, f"{where}.{key}", low, 24 * 60)
    if value > MAX_JOB_MINUTES:
        raise ConfigError(
            f"{where}.{key}: {value} is not allowed; at most {MAX_JOB_MINUTES}: with "
            f"{JOB_OVERHEAD_MINUTES} minutes for provisioning and upload, the deploy must wait "
            f"for the job within CloudFormation's {CLOUDFORMATION_LIMIT_MINUTES}-minute limit "
            "for a custom resource"
        )
    return value


DEPLOYMENT_STRATEGIES = ("all_at_once", "canary", "linear")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _autoscaling(raw: Any, where: str, count: int) -> Autoscaling:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {raw!r} is not allowed; expected an object")
    _no_unknown_keys(raw, where, {"min", "max", "invocations_per_instance"})
    low = _integer(raw, "min", f"{where}.min", *INSTANCE_COUNT)
    high = _integer(raw, "max", f"{where}.max", low, INSTANCE_COUNT[1])
    if not low <= count <= high:
        raise ConfigError(
            f"{where}: the instance count {count} is not allowed outside min {low} and max {high}"
        )
    return Autoscaling(low, high, _integer(raw, "invocations_per_instance", f"{where}.invocations_per_instance", 1, 100_000))


def _production(
    raw: Mapping[str, Any], where: str, serving: InstanceServing | ServerlessServing, packages: bool
) -> dict[str, Any]:
    """Alarms, the blue/green deployment policy, data capture and the cost guard."""
    settings: dict[str, Any] = {}
    serverless = isinstance(serving, ServerlessServing)
    if "alarms" in raw:
        sub = f"{where}.alarms"
        alarms = _mapping(raw, "alarms", sub)
        _no_unknown_keys(alarms, sub, {"emails", "max_model_latency_ms", "max_5xx_errors"})
        emails = alarms.get("emails", [])
        if not isinstance(emails, list) or not all(isinstance(e, str) and _EMAIL.match(e) for e in emails):
            raise ConfigError(f"{sub}.emails: {emails!r} is not allowed; expected a list of e-mail addresses")
        settings["alarms"] = Alarms(
            emails=tuple(emails),
            max_model_latency_ms=_integer(alarms, "max_model_latency_ms", f"{sub}.max_model_latency_ms", 1, 600_000),
            max_5xx_errors=_integer(alarms, "max_5xx_errors", f"{sub}.max_5xx_errors", 0, 1_000_000),
        )
    if "deployment" in raw:
        settings["deployment"] = _deployment(raw, where, serving, "alarms" in settings)
    if "cost_guard" in raw:
        sub = f"{where}.cost_guard"
        if serverless:
            raise ConfigError(
                f"{sub}: not allowed with serving.serverless; a serverless endpoint already costs "
                "nothing while idle"
            )
        if not packages:
            raise ConfigError(
                f"{sub}: not allowed on a stage that serves promoted artifacts (pinned_artifact): "
                "an idle teardown would leave it dark until the next promotion; use it on a stage "
                "that packages (dev)"
            )
        guard = _mapping(raw, "cost_guard", sub)
        _no_unknown_keys(guard, sub, {"idle_hours"})
        settings["idle_teardown_hours"] = _integer(guard, "idle_hours", f"{sub}.idle_hours", 1, 24 * 14)
    if "data_capture" in raw:
        sub = f"{where}.data_capture"
        if serverless:
            raise breaks_rule("serverless-features", sub, raw["data_capture"], "stage serves serverless")
        capture = _mapping(raw, "data_capture", sub)
        _no_unknown_keys(capture, sub, {"sampling_percent"})
        settings["data_capture_percent"] = _integer(capture, "sampling_percent", f"{sub}.sampling_percent", 1, 100)
    return settings


def _deployment(
    raw: Mapping[str, Any], where: str, serving: InstanceServing | ServerlessServing, has_alarms: bool
) -> Deployment:
    """Blue/green: all at once, or canary/linear steps of whole instances, each within
    its documented share at every fleet size autoscaling may hold (rules canary-size,
    linear-step); serverless endpoints take only all at once."""
    sub = f"{where}.deployment"
    deployment = _mapping(raw, "deployment", sub)
    _no_unknown_keys(deployment, sub, {"strategy", "step_instances", "wait_minutes"})
    strategy = _choice(deployment, "strategy", sub, DEPLOYMENT_STRATEGIES)
    step = None
    if strategy != "all_at_once":
        if isinstance(serving, ServerlessServing):
            raise breaks_rule("serverless-traffic-shifting", f"{sub}.strategy", strategy, "stage serves serverless")
        step = _integer(deployment, "step_instances", f"{sub}.step_instances", 1, INSTANCE_COUNT[1])
        if not has_alarms:
            raise ConfigError(
                f"{sub}.strategy: {strategy!r} needs {where}.alarms: the shift rolls back on them"
            )
        scaling = serving.autoscaling
        fleet_sizes = range(scaling.min_instances, scaling.max_instances + 1) if scaling else (serving.instance_count,)
        problem = limits.step_problem(strategy, step, fleet_sizes)
        if problem:
            raise breaks_rule("canary-size" if strategy == "canary" else "linear-step", f"{sub}.step_instances",
                              step, problem)
    elif "step_instances" in deployment:
        raise ConfigError(f"{sub}.step_instances: not allowed with strategy 'all_at_once'")
    return Deployment(strategy, step, _integer(deployment, "wait_minutes", f"{sub}.wait_minutes", 0, 60))


def _pinned_artifact(value: Any, key: str) -> str:
    artifact = value if isinstance(value, str) else ""
    if not artifact.startswith(ARTIFACTS_PREFIX) or not artifact.endswith(_ARTIFACT_SUFFIXES):
        raise ConfigError(
            f"{key}: {value!r} is not allowed; expected a key in the stage "
            f"bucket under '{ARTIFACTS_PREFIX}' ending in '.tar.gz' (compressed) or '/' "
            "(uncompressed prefix)"
        )
    return artifact


def _tags(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {raw!r} is not allowed; expected an object of string to string")
    for key, value in raw.items():
        if not _TAG_KEY.match(key) or key.lower().startswith("aws:"):
            raise ConfigError(
                f"{where}: key {key!r} is not allowed; 1-128 letters, digits, spaces or "
                "_ . : / = + - @, not starting with 'aws:'"
            )
        if not isinstance(value, str) or not _TAG_VALUE.match(value):
            raise ConfigError(
                f"{where}.{key}: {value!r} is not allowed; a string of up to 256 letters, "
                "digits, spaces or _ . : / = + - @"
            )
    return tuple(sorted(raw.items()))


def _no_unknown_keys(raw: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown key; allowed: {', '.join(sorted(allowed))}"
        )


def _mapping(raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = raw.get(key)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {value!r} is not allowed; expected an object")
    return value


def _string(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {value!r} is not allowed; expected a non-empty string")
    return value


def _integer(raw: Mapping[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = raw.get(key)
    # bool is an int subclass in Python; `true` is never a count.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"{where}: {value!r} is not allowed; expected a whole number from {low} to {high}"
        )
    return value


def _choice(raw: Mapping[str, Any], key: str, where: str, allowed: tuple[str, ...]) -> str:
    value = raw.get(key)
    if value not in allowed:
        raise ConfigError(f"{where}.{key}: {value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value
