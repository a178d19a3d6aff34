"""Stage configuration: the one validated, frozen object each stage is built from.

`cdk.json` context holds the raw settings (`project`, `stages.<name>`). This
module turns one stage's raw settings into a `StageConfig` or raises a
`ConfigError` whose single line names the key, the bad value and what is
allowed: the settings models check each part (`stage_settings.py`), `checks.py`
the rules between parts, and this module the names, the dev fallbacks and the
command line's artifact. Nothing here reads the environment or calls AWS:
`app.py` passes the fallback account and region in.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from packaging_job.packager.archive import Limits
from stacks.stage import images
from stacks.stage.checks import check_stage, check_stage_images
from stacks.stage.errors import config_error
from stacks.stage.fields import Project, StageName
from stacks.stage.names import StageNames
from stacks.stage.region import FALLBACK_STAGE, environment_region
from stacks.stage.schema import (
    Alarms,
    Autoscaling,
    ConfigError,
    Deployment,
    InstanceServing,
    ModelConfig,
    PackagingConfig,
    ServerlessServing,
    StageConfig,
)
from stacks.stage.stage_settings import Account, StageSettings

# SageMaker endpoint names: alphanumerics and hyphens, 63 characters at most.
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](?:-*[a-zA-Z0-9])*$")
_ENDPOINT_NAME_MAX = 63
_ACCOUNT: TypeAdapter[str] = TypeAdapter(Account)
_PROJECT: TypeAdapter[str] = TypeAdapter(Project)
_STAGE_NAME: TypeAdapter[str] = TypeAdapter(StageName)
_CLI_ARTIFACT = "artifact (-c artifact=...)"


def load_stage_config(
    context: Mapping[str, Any],
    stage: str,
    *,
    default_account: str | None = None,
    default_region: str | None = None,
    artifact: str | None = None,
    artifact_digest: str | None = None,
    check_images: bool = True,
) -> StageConfig:
    """Validate `context` (cdk.json's context) for `stage`.

    `artifact` (`cdk deploy -c artifact=KEY -c artifact_digest=SHA256`, as
    promotions deploy) serves that key of the stage bucket instead of what the
    stage's config says, and reports its digest.

    `check_images=False` leaves out looking up the pinned images for the stage's
    instance types (the SDK takes seconds to import), for the tools that only read
    a stage whose synth has checked them.

    Only the dev stage may take its account and region from the fallbacks
    (`CDK_DEFAULT_ACCOUNT` and the region rule of `stacks/stage/region.py`, applied by
    app.py): staging and prod must name theirs so a promotion never lands in the
    wrong account.
    """
    project = context.get("project")
    if not isinstance(project, str) or not _valid(_PROJECT, project):
        raise ConfigError(f"project: {project!r} is not allowed; {_described(Project)}")
    stages = context.get("stages")
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError("stages: missing; declare at least one stage in cdk.json context")
    for name in stages:
        if not _valid(_STAGE_NAME, name):
            raise ConfigError(f"stages: stage name {name!r} is not allowed; {_described(StageName)}")
    if stage not in stages:
        raise ConfigError(f"stage: {stage!r} is not declared; allowed: {', '.join(sorted(stages))}")
    endpoint_name = StageNames(project, stage).endpoint
    if len(endpoint_name) > _ENDPOINT_NAME_MAX or not _ENDPOINT_NAME.fullmatch(endpoint_name):
        raise ConfigError(
            f"stage: {stage!r} makes endpoint name {endpoint_name!r}, which is not a valid "
            f"SageMaker endpoint name (letters, digits, hyphens, {_ENDPOINT_NAME_MAX} "
            "characters at most)"
        )

    where = f"stages.{stage}"
    raw = stages[stage]
    packages = isinstance(raw, Mapping) and "packaging" in raw
    if artifact is not None and isinstance(raw, Mapping):
        raw = {key: value for key, value in raw.items() if key != "packaging"}
        raw["pinned_artifact"] = artifact
    try:
        settings = StageSettings.model_validate(raw)
    except ValidationError as error:
        renamed = {"pinned_artifact": _CLI_ARTIFACT} if artifact is not None else None
        raise config_error(error, StageSettings, raw, where, renamed) from None
    may_fall_back = stage == FALLBACK_STAGE
    account = _account(settings.account, where, default_account, may_fall_back)
    artifact_key = _CLI_ARTIFACT if artifact is not None else f"{where}.pinned_artifact"
    # The user never wrote a fallback region: errors about it point at where it came from.
    region_origin = (
        f" (it came from the environment by the region rule: AWS_REGION, AWS_DEFAULT_REGION or the "
        f"profile's region; cdk.json leaves {where}.region null)"
        if settings.region is None and may_fall_back
        else ""
    )
    region = _region(settings.region, where, default_region, may_fall_back, region_origin)
    check_stage(settings, where, region, packages=packages, artifact_key=artifact_key, region_origin=region_origin)
    if check_images:
        check_stage_images(settings, where, region)
    return _stage_config(
        settings,
        project=project,
        stage=stage,
        account=account,
        region=region,
        artifact_digest=_digest(artifact_digest, artifact),
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


def load_from_cdk_json(cdk_json: pathlib.Path, stage: str, environ: Mapping[str, str]) -> StageConfig:
    """The stage's config for the command-line tools, its region by the region rule.

    Each reads a stage that a synth built or goes on to synthesize it, and synth
    checks the images, so they do without the SDK's seconds.
    """
    return load_stage_config(
        read_context(cdk_json), stage, default_region=environment_region(environ), check_images=False
    )


def _account(value: str | None, where: str, fallback: str | None, may_fall_back: bool) -> str | None:
    if value is None and may_fall_back:
        if fallback is None:
            # dev with no account anywhere synthesizes an account-agnostic template.
            return None
        value = fallback
    if value is None:
        raise ConfigError(f"{where}.account: missing; set the 12-digit AWS account id")
    # cdk.json's account is validated with the stage; the fallback (CDK_DEFAULT_ACCOUNT) is checked here.
    if not _valid(_ACCOUNT, value):
        origin = " (from CDK_DEFAULT_ACCOUNT; cdk.json leaves it null)" if value == fallback else ""
        raise ConfigError(f"{where}.account: {value!r}{origin} is not allowed; {_described(Account)}")
    return value


def _region(value: str | None, where: str, fallback: str | None, may_fall_back: bool, origin: str) -> str:
    if value is None:
        value = fallback if may_fall_back else None
        if value is None:
            raise ConfigError(f"{where}.region: missing; set it in cdk.json")
    allowed = images.supported_regions()
    if value not in allowed:
        raise ConfigError(
            f"{where}.region: {value!r} is not allowed; the TF Serving image "
            f"{images.SERVING_TF_VERSION} exists in: {', '.join(allowed)}{origin}"
        )
    return value


def _valid(adapter: TypeAdapter[str], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def _described(annotated: Any) -> str:
    """The description of an Annotated type's Field(...): what it allows."""
    return next(meta.description for meta in annotated.__metadata__ if getattr(meta, "description", None))


def _stage_config(
    settings: StageSettings, *, project: str, stage: str, account: str | None, region: str, artifact_digest: str | None
) -> StageConfig:
    """The frozen objects the stacks are built from, out of validated settings."""
    model, packaging, deployment, alarms = settings.model, settings.packaging, settings.deployment, settings.alarms
    return StageConfig(
        project=project,
        stage=stage,
        account=account,
        region=region,
        model=ModelConfig(model.name, model.version, model.hub_handle, model.hub_sha256),
        serving=_serving(settings),
        packaging=PackagingConfig(
            instance_type=packaging.instance_type,
            volume_gb=packaging.volume_gb,
            max_runtime_minutes=packaging.max_runtime_minutes,
            spot_max_wait_minutes=packaging.spot_max_wait_minutes,
            volume_kms_key_arn=packaging.volume_kms_key_arn,
            signature=packaging.signature,
            sample_input=packaging.sample_input,
            verify_load=packaging.verify_load,
            limits=Limits(**packaging.limits.model_dump(exclude_none=True)),
        )
        if packaging
        else None,
        pinned_artifact_key=settings.pinned_artifact,
        pinned_artifact_digest=artifact_digest,
        retain_data=settings.removal_policy == "retain",
        tags=tuple(sorted(settings.tags.items())),
        deployment=Deployment(deployment.strategy, deployment.step_instances, deployment.wait_minutes)
        if deployment
        else None,
        alarms=Alarms(tuple(alarms.emails), alarms.max_model_latency_ms, alarms.max_5xx_errors) if alarms else None,
        data_capture_percent=settings.data_capture.sampling_percent if settings.data_capture else None,
        idle_teardown_hours=settings.cost_guard.idle_hours if settings.cost_guard else None,
        promoters=tuple(settings.promoters),
    )


def _serving(settings: StageSettings) -> InstanceServing | ServerlessServing:
    instances, serverless = settings.serving.instances, settings.serving.serverless
    if serverless is not None:
        return ServerlessServing(serverless.memory_mb, serverless.max_concurrency)
    assert instances is not None  # ServingSettings holds exactly one
    scaling = instances.autoscaling
    return InstanceServing(
        instances.type,
        instances.count,
        Autoscaling(scaling.min, scaling.max, scaling.invocations_per_instance) if scaling else None,
    )


def _digest(digest: str | None, artifact: str | None) -> str | None:
    if digest is None:
        return None
    if artifact is None or not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(
            f"artifact_digest: {digest!r} is not allowed; a sha256 tree digest (64 hex "
            "characters), given together with -c artifact=KEY"
        )
    return digest
