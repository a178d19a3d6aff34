"""The rules that join a stage's validated parts: serving with region, artifact,
deployment, capture and cost guard; the packaging key with the region; each
instance type with the pinned TensorFlow image for it.

Each part is valid on its own by then (`settings.py`, `stage_settings.py`);
these rules need two parts, or the stage's resolved region, or know whether the
stage packages as cdk.json says (a promotion's `-c artifact` replaces packaging).
"""

from __future__ import annotations

from collections.abc import Callable

from stacks.rulebook import limits, traffic
from stacks.stage import images
from stacks.stage.schema import ConfigError, breaks_rule
from stacks.stage.stage_settings import StageSettings


def check_stage(
    settings: StageSettings, where: str, region: str, *, packages: bool, artifact_key: str, region_origin: str = ""
) -> None:
    """Raise the ConfigError of the first joined rule `settings` breaks.

    `packages`: cdk.json's stage packages on deploy; `artifact_key`: the key
    path the pinned artifact came from (the stage's, or `-c artifact`);
    `region_origin`: what errors about the region add when cdk.json did not name it.
    """
    serving = settings.serving
    if serving.serverless is not None:
        if region not in limits.SERVERLESS_REGIONS:
            rule = breaks_rule(
                "serverless-regions",
                f"{where}.region",
                region,
                f"available in {', '.join(sorted(limits.SERVERLESS_REGIONS))}",
            )
            raise ConfigError(f"{rule}{region_origin}")
        if settings.pinned_artifact is not None and settings.pinned_artifact.endswith("/"):
            raise breaks_rule(
                "serverless-model-data", artifact_key, settings.pinned_artifact, "stage serves serverless"
            )
    packaging = settings.packaging
    key_arn = packaging.volume_kms_key_arn if packaging else None
    # A KMS key encrypts volumes only in its own region.
    if key_arn and key_arn.split(":")[3] != region:
        raise ConfigError(
            f"{where}.packaging.volume_kms_key_arn: {key_arn!r} is not allowed; the key is in "
            f"{key_arn.split(':')[3]}, the stage in {region}{region_origin}: use a key of {region}"
        )
    _check_deployment(settings, where)
    if settings.cost_guard is not None:
        if serving.serverless is not None:
            raise ConfigError(
                f"{where}.cost_guard: not allowed with serving.serverless; a serverless endpoint already costs "
                "nothing while idle"
            )
        if not packages:
            raise ConfigError(
                f"{where}.cost_guard: not allowed on a stage that serves promoted artifacts (pinned_artifact): "
                "an idle teardown would leave it dark until the next promotion; use it on a stage "
                "that packages (dev)"
            )
    if settings.data_capture is not None and serving.serverless is not None:
        raise breaks_rule(
            "serverless-features",
            f"{where}.data_capture",
            settings.data_capture.model_dump(),
            "stage serves serverless",
        )


def _check_deployment(settings: StageSettings, where: str) -> None:
    """Canary/linear steps of whole instances, each within its documented share at
    every fleet size autoscaling may hold (rules canary-size, linear-step), rolled
    back on the stage's alarms; serverless endpoints take only all at once."""
    deployment = settings.deployment
    if deployment is None or deployment.step_instances is None:
        return
    sub = f"{where}.deployment"
    strategy, step = deployment.strategy, deployment.step_instances
    instances = settings.serving.instances
    if instances is None:
        raise breaks_rule("serverless-traffic-shifting", f"{sub}.strategy", strategy, "stage serves serverless")
    if settings.alarms is None:
        raise ConfigError(f"{sub}.strategy: {strategy!r} needs {where}.alarms: the shift rolls back on them")
    scaling = instances.autoscaling
    fleet_sizes = range(scaling.min, scaling.max + 1) if scaling else (instances.count,)
    problem = traffic.step_problem(strategy, step, fleet_sizes)
    if problem:
        raise breaks_rule(
            "canary-size" if strategy == "canary" else "linear-step", f"{sub}.step_instances", step, problem
        )
    # All at once waits at most twice the longest wait (2 x 60 minutes) and fits; canary
    # three times; linear once per step, which many small steps can take past the limit.
    timeout = traffic.blue_green_timeout(strategy, step, max(fleet_sizes), deployment.wait_minutes * 60)
    most = traffic.BLUE_GREEN_TIMEOUT_SECONDS[1]
    if timeout > most:
        shifts = traffic.traffic_shifts(strategy, step, max(fleet_sizes))
        raise breaks_rule(
            "blue-green-timeout",
            f"{sub}.wait_minutes",
            deployment.wait_minutes,
            f"{shifts} steps of {step} at up to {max(fleet_sizes)} instances and the wait before the old fleet "
            f"ends make {(timeout - traffic.NEW_FLEET_SECONDS) // 60} minutes of waits, over the "
            f"{(most - traffic.NEW_FLEET_SECONDS) // 60} that leave {traffic.NEW_FLEET_SECONDS // 60} minutes for the "
            "new fleet; use fewer, larger "
            "steps or a shorter wait",
        )


def check_stage_images(settings: StageSettings, where: str, region: str) -> None:
    """Raise a ConfigError when the SDK's image table (`images.py`) has no pinned
    TensorFlow image for the serving or packaging instance type.

    The SDK is imported for this (seconds). Its lookup raises ValueError for what
    it does not have; the region and the pinned versions are known good by now,
    so what it refuses is the instance type.
    """
    instances, packaging = settings.serving.instances, settings.packaging
    if instances is not None:
        _has_image(
            images.serving_image,
            f"{where}.serving.instances.type",
            instances.type,
            region,
            f"TF Serving image {images.SERVING_TF_VERSION}",
        )
    if packaging is not None:
        _has_image(
            images.training_image,
            f"{where}.packaging.instance_type",
            packaging.instance_type,
            region,
            f"TensorFlow training image {images.TRAINING_TF_VERSION}",
        )


def _has_image(
    lookup: Callable[[str, str], images.ContainerImage], key: str, instance_type: str, region: str, image: str
) -> None:
    if limits.is_arm(instance_type):
        raise ConfigError(
            f"{key}: {instance_type!r} is not allowed; ml.{limits.instance_family(instance_type)} runs on Arm "
            f"(AWS Graviton or NVIDIA Grace) and the pinned {image} is an x86 build; use a CPU type "
            "(ml.m5, ml.c5 ...) or a GPU type (ml.g5 ...)"
        )
    try:
        lookup(region, instance_type)
    except ValueError as error:
        # The SDK's first sentence names what it lacks ("Unsupported processor: inf"); the
        # rest advises upgrading the SDK, which the pinned version rules out.
        reason = str(error).split(". ")[0].rstrip(".")
        raise ConfigError(
            f"{key}: {instance_type!r} is not allowed; the pinned {image} has no build for it (SageMaker SDK: "
            f"{reason}); use a CPU type (ml.m5, ml.c5 ...) or a GPU type (ml.g5 ...): the pinned TensorFlow "
            "images have no Inferentia, Trainium or Graviton build"
        ) from error
