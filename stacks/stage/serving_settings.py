"""How a stage serves: instances or serverless, autoscaling, alarms, deployment, capture."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from stacks.rulebook import limits
from stacks.stage.fields import choice, integer, mapping, no_unknown_keys, string
from stacks.stage.schema import (
    INSTANCE_COUNT,
    Alarms,
    Autoscaling,
    ConfigError,
    Deployment,
    InstanceServing,
    ServerlessServing,
    breaks_rule,
)


def read_serving(raw: Mapping[str, Any], where: str) -> InstanceServing | ServerlessServing:
    modes = {"instances", "serverless"}
    no_unknown_keys(raw, where, modes)
    if len(raw) != 1:
        raise ConfigError(f"{where}: {sorted(raw)!r} is not allowed; set exactly one of 'instances' or 'serverless'")
    if "instances" in raw:
        sub = f"{where}.instances"
        inst = mapping(raw, "instances", sub)
        no_unknown_keys(inst, sub, {"type", "count", "autoscaling"})
        instance_type = string(inst, "type", f"{sub}.type")
        if not limits.INSTANCE_TYPE.fullmatch(instance_type):
            raise ConfigError(
                f"{sub}.type: {instance_type!r} is not allowed; expected a SageMaker "
                "instance type such as 'ml.m5.large' (it starts with 'ml.')"
            )
        count = integer(inst, "count", f"{sub}.count", *INSTANCE_COUNT)
        return InstanceServing(
            instance_type=instance_type,
            instance_count=count,
            autoscaling=read_autoscaling(inst["autoscaling"], f"{sub}.autoscaling", count)
            if "autoscaling" in inst
            else None,
        )
    sub = f"{where}.serverless"
    sls = mapping(raw, "serverless", sub)
    no_unknown_keys(sls, sub, {"memory_mb", "max_concurrency"})
    memory = integer(sls, "memory_mb", f"{sub}.memory_mb", low=1, high=10**6)
    if memory not in limits.SERVERLESS_MEMORY_MB:
        raise ConfigError(
            f"{sub}.memory_mb: {memory!r} is not allowed; allowed: "
            f"{', '.join(map(str, limits.SERVERLESS_MEMORY_MB))} (SageMaker rule serverless-limits)"
        )
    return ServerlessServing(
        memory_mb=memory,
        max_concurrency=integer(sls, "max_concurrency", f"{sub}.max_concurrency", *limits.SERVERLESS_MAX_CONCURRENCY),
    )


DEPLOYMENT_STRATEGIES = ("all_at_once", "canary", "linear")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def read_autoscaling(raw: Any, where: str, count: int) -> Autoscaling:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {raw!r} is not allowed; expected an object")
    no_unknown_keys(raw, where, {"min", "max", "invocations_per_instance"})
    low = integer(raw, "min", f"{where}.min", *INSTANCE_COUNT)
    high = integer(raw, "max", f"{where}.max", low, INSTANCE_COUNT[1])
    if not low <= count <= high:
        raise ConfigError(f"{where}: the instance count {count} is not allowed outside min {low} and max {high}")
    return Autoscaling(
        low, high, integer(raw, "invocations_per_instance", f"{where}.invocations_per_instance", 1, 100_000)
    )


def read_production(
    raw: Mapping[str, Any], where: str, serving: InstanceServing | ServerlessServing, packages: bool
) -> dict[str, Any]:
    """Alarms, the blue/green deployment policy, data capture and the cost guard."""
    settings: dict[str, Any] = {}
    serverless = isinstance(serving, ServerlessServing)
    if "alarms" in raw:
        sub = f"{where}.alarms"
        alarms = mapping(raw, "alarms", sub)
        no_unknown_keys(alarms, sub, {"emails", "max_model_latency_ms", "max_5xx_errors"})
        emails = alarms.get("emails", [])
        if not isinstance(emails, list) or not all(isinstance(e, str) and _EMAIL.fullmatch(e) for e in emails):
            raise ConfigError(f"{sub}.emails: {emails!r} is not allowed; expected a list of e-mail addresses")
        settings["alarms"] = Alarms(
            emails=tuple(emails),
            max_model_latency_ms=integer(alarms, "max_model_latency_ms", f"{sub}.max_model_latency_ms", 1, 600_000),
            max_5xx_errors=integer(alarms, "max_5xx_errors", f"{sub}.max_5xx_errors", 0, 1_000_000),
        )
    if "deployment" in raw:
        settings["deployment"] = read_deployment(raw, where, serving, "alarms" in settings)
    if "cost_guard" in raw:
        sub = f"{where}.cost_guard"
        if serverless:
            raise ConfigError(
                f"{sub}: not allowed with serving.serverless; a serverless endpoint already costs nothing while idle"
            )
        if not packages:
            raise ConfigError(
                f"{sub}: not allowed on a stage that serves promoted artifacts (pinned_artifact): "
                "an idle teardown would leave it dark until the next promotion; use it on a stage "
                "that packages (dev)"
            )
        guard = mapping(raw, "cost_guard", sub)
        no_unknown_keys(guard, sub, {"idle_hours"})
        settings["idle_teardown_hours"] = integer(guard, "idle_hours", f"{sub}.idle_hours", 1, 24 * 14)
    if "data_capture" in raw:
        sub = f"{where}.data_capture"
        if serverless:
            raise breaks_rule("serverless-features", sub, raw["data_capture"], "stage serves serverless")
        capture = mapping(raw, "data_capture", sub)
        no_unknown_keys(capture, sub, {"sampling_percent"})
        settings["data_capture_percent"] = integer(capture, "sampling_percent", f"{sub}.sampling_percent", 1, 100)
    return settings


def read_deployment(
    raw: Mapping[str, Any], where: str, serving: InstanceServing | ServerlessServing, has_alarms: bool
) -> Deployment:
    """Blue/green: all at once, or canary/linear steps of whole instances, each within
    its documented share at every fleet size autoscaling may hold (rules canary-size,
    linear-step); serverless endpoints take only all at once."""
    sub = f"{where}.deployment"
    deployment = mapping(raw, "deployment", sub)
    no_unknown_keys(deployment, sub, {"strategy", "step_instances", "wait_minutes"})
    strategy = choice(deployment, "strategy", sub, DEPLOYMENT_STRATEGIES)
    step = None
    if strategy != "all_at_once":
        if isinstance(serving, ServerlessServing):
            raise breaks_rule("serverless-traffic-shifting", f"{sub}.strategy", strategy, "stage serves serverless")
        step = integer(deployment, "step_instances", f"{sub}.step_instances", 1, INSTANCE_COUNT[1])
        if not has_alarms:
            raise ConfigError(f"{sub}.strategy: {strategy!r} needs {where}.alarms: the shift rolls back on them")
        scaling = serving.autoscaling
        fleet_sizes = range(scaling.min_instances, scaling.max_instances + 1) if scaling else (serving.instance_count,)
        problem = limits.step_problem(strategy, step, fleet_sizes)
        if problem:
            raise breaks_rule(
                "canary-size" if strategy == "canary" else "linear-step", f"{sub}.step_instances", step, problem
            )
    elif "step_instances" in deployment:
        raise ConfigError(f"{sub}.step_instances: not allowed with strategy 'all_at_once'")
    return Deployment(strategy, step, integer(deployment, "wait_minutes", f"{sub}.wait_minutes", 0, 60))
