"""SageMaker API requests checked against the rulebook before anything sends them on.

`check(operation, request, lookups)` returns the violations of one request,
as SageMaker would refuse it. `lookups` answers what SageMaker itself knows at
that moment (the models and endpoint configs a request names, what is under an
S3 prefix, the capacity range Application Auto Scaling holds each variant to);
whatever it cannot answer is not guessed. The rehearsal's SageMaker runs every request through
this, and the template check (`templates.py`) builds requests from templates.
"""

from __future__ import annotations

from typing import Any, Protocol

from stacks.rulebook import Violation, limits, traffic, violation


class Lookups(Protocol):
    def model(self, name: str) -> dict | None: ...
    def endpoint_config(self, name: str) -> dict | None: ...
    def endpoint(self, name: str) -> dict | None: ...
    def prefix_keys(self, uri: str) -> list[str] | None: ...
    def scaling(self, endpoint_name: str) -> dict[str, tuple[int, int]]:
        """Each registered variant's (min, max) capacity."""
        ...


def check(operation: str, request: dict[str, Any], lookups: Lookups) -> list[Violation]:
    checker = _CHECKS.get(operation)
    return checker(request, lookups) if checker else []


def _training_job(request: dict, lookups: Lookups) -> list[Violation]:
    found = []
    where = f"CreateTrainingJob {request.get('TrainingJobName')}"
    for key, value in request.get("HyperParameters", {}).items():
        if len(value) > limits.HYPERPARAMETER_MAX:
            found.append(violation("hyperparameter-length", where, f"hyperparameter {key} is {len(value)} characters"))
    stopping = request.get("StoppingCondition", {})
    if request.get("EnableManagedSpotTraining") and stopping.get("MaxWaitTimeInSeconds", 0) < stopping.get(
        "MaxRuntimeInSeconds", 0
    ):
        found.append(violation("spot-wait", where, f"StoppingCondition {stopping}"))
    resources = request.get("ResourceConfig", {})
    kind = resources.get("InstanceType")
    problem = limits.unoffered(kind, limits.TRAINING_INSTANCE_TYPES) if isinstance(kind, str) else None
    if problem:
        found.append(violation("training-instance-type", where, f"InstanceType {kind}: {problem}"))
    if resources.get("VolumeKmsKeyId") and limits.has_instance_store(resources.get("InstanceType", "")):
        found.append(violation("instance-store-kms", where, f"VolumeKmsKeyId with {resources['InstanceType']}"))
    return found


def _model(request: dict, lookups: Lookups) -> list[Violation]:
    found = []
    where = f"CreateModel {request.get('ModelName')}"
    for container in [request.get("PrimaryContainer") or {}] + request.get("Containers", []):
        url = container.get("ModelDataUrl")
        if isinstance(url, str) and not url.endswith(".tar.gz"):
            found.append(violation("model-data-url-tar-gz", where, f"ModelDataUrl {url}"))
        source = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
        uri = source.get("S3Uri")
        if source.get("S3DataType") == "S3Prefix" and isinstance(uri, str):
            if not uri.endswith("/"):
                found.append(violation("model-data-prefix-slash", where, f"S3Uri {uri}"))
            folders = [key for key in lookups.prefix_keys(uri) or [] if key.endswith("/")]
            if folders:
                found.append(violation("model-data-no-folder-objects", where, f"{uri} holds {folders[:3]}"))
    return found


def _serverless_variants(config: dict) -> list[dict]:
    return [v for v in config.get("ProductionVariants", []) if v.get("ServerlessConfig")]


def _endpoint_config(request: dict, lookups: Lookups) -> list[Violation]:
    found = []
    where = f"CreateEndpointConfig {request.get('EndpointConfigName')}"
    variants = request.get("ProductionVariants", [])
    serverless = _serverless_variants(request)
    if serverless and len(variants) > 1:
        found.append(violation("serverless-features", where, f"{len(variants)} variants with a serverless one"))
    if serverless and request.get("DataCaptureConfig"):
        found.append(violation("serverless-features", where, "DataCaptureConfig on a serverless endpoint"))
    for variant in serverless:
        settings = variant["ServerlessConfig"]
        low, high = limits.SERVERLESS_MAX_CONCURRENCY
        if (
            settings.get("MemorySizeInMB") not in limits.SERVERLESS_MEMORY_MB
            or not low <= settings.get("MaxConcurrency", 0) <= high
        ):
            found.append(violation("serverless-limits", where, f"ServerlessConfig {settings}"))
        model = lookups.model(variant.get("ModelName", "")) or {}
        container = model.get("PrimaryContainer") or {}
        if container.get("ModelDataSource"):
            found.append(
                violation("serverless-model-data", where, f"model {variant.get('ModelName')} has ModelDataSource")
            )
        if model.get("EnableNetworkIsolation") or model.get("VpcConfig"):
            found.append(
                violation(
                    "serverless-features", where, f"model {variant.get('ModelName')} has network isolation or a VPC"
                )
            )
    for variant in variants:
        kind = variant.get("InstanceType")
        problem = limits.unoffered(kind, limits.ENDPOINT_INSTANCE_TYPES) if isinstance(kind, str) else None
        if problem:
            found.append(violation("endpoint-instance-type", where, f"InstanceType {kind}: {problem}"))
    store = [v["InstanceType"] for v in variants if limits.has_instance_store(v.get("InstanceType", ""))]
    if request.get("KmsKeyId") and store:
        found.append(violation("instance-store-kms", where, f"KmsKeyId with {store[0]}"))
    return found


def _deployment(request: dict, config: dict | None, lookups: Lookups, where: str) -> list[Violation]:
    deployment = request.get("DeploymentConfig") or {}
    found = []
    serverless = bool(config and _serverless_variants(config))
    if deployment.get("RollingUpdatePolicy") and serverless:
        found.append(violation("serverless-rolling", where, "RollingUpdatePolicy on a serverless endpoint"))
    routing = (deployment.get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration") or {}
    kind = routing.get("Type", "ALL_AT_ONCE")
    if kind in ("CANARY", "LINEAR"):
        rule = "canary-size" if kind == "CANARY" else "linear-step"
        size = routing.get("CanarySize" if kind == "CANARY" else "LinearStepSize") or {}
        if serverless:
            found.append(violation("serverless-traffic-shifting", where, f"{kind} on a serverless endpoint"))
        elif config:
            problem = _step_problem(
                kind.lower(), size, _fleet_sizes(config, lookups.scaling(request.get("EndpointName", "")))
            )
            if problem:
                found.append(violation(rule, where, problem))
    policy = deployment.get("BlueGreenUpdatePolicy")
    if policy:
        problem = _timeout_problem(
            policy, routing, _fleet_sizes(config, lookups.scaling(request.get("EndpointName", ""))) if config else ""
        )
        if problem:
            found.append(violation("blue-green-timeout", where, problem))
    alarms = (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms")
    low, high = traffic.ROLLBACK_ALARMS
    if alarms is not None and not low <= len(alarms) <= high:
        found.append(violation("rollback-alarms", where, f"{len(alarms)} rollback alarms"))
    return found


def _fleet_sizes(config: dict, scaling: dict[str, tuple[int, int]]) -> list[int] | str:
    """Every instance count the (single-variant) fleet may have when an update
    starts, or why synth cannot know it."""
    sizes: set[int] = set()
    for variant in config.get("ProductionVariants", []):
        count = variant.get("InitialInstanceCount", 0)
        if not isinstance(count, int):
            return f"InitialInstanceCount {count} is not known before deploy, so the step cannot be checked"
        low, high = scaling.get(variant.get("VariantName", ""), (count, count))
        sizes |= set(range(low, high + 1)) | {count}
    return sorted(sizes)


def _timeout_problem(policy: dict, routing: dict, fleet_sizes: list[int] | str) -> str | None:
    """Why the update's execution timeout is out of range or no longer than its waits
    (at the largest fleet, for linear steps of instances), or None; a wait that no
    timeout can cover is a problem even when the request leaves the timeout out."""
    kind = str(routing.get("Type", "ALL_AT_ONCE")).lower()
    size = routing.get("LinearStepSize") or {}
    wait, termination = routing.get("WaitIntervalInSeconds", 0), policy.get("TerminationWaitInSeconds", 0)
    timeout = policy.get("MaximumExecutionTimeoutInSeconds")
    low, high = traffic.BLUE_GREEN_TIMEOUT_SECONDS
    if timeout is not None and (not isinstance(timeout, int) or not low <= timeout <= high):
        return f"MaximumExecutionTimeoutInSeconds {timeout} is outside {low}-{high}"
    step = size.get("Value")
    if not all(isinstance(v, int) for v in (wait, termination)) or (kind == "linear" and not isinstance(step, int)):
        return None  # not known before deploy; the timeout's range was checked
    percent = size.get("Type") == "CAPACITY_PERCENT"
    if kind == "linear" and not percent and isinstance(fleet_sizes, str):
        return None  # the fleet is not known before deploy
    largest = 1 if percent or isinstance(fleet_sizes, str) else max(fleet_sizes, default=1)
    waiting = traffic.blue_green_waiting(
        traffic.traffic_shifts(kind, step or 1, largest, percent=percent), wait, termination
    )
    if waiting >= (high if timeout is None else timeout):
        return f"{waiting} s of waits against a timeout of {high if timeout is None else timeout} s"
    return None


def _step_problem(strategy: str, size: dict, fleet_sizes: list[int] | str) -> str | None:
    value = size.get("Value")
    if not isinstance(value, int):
        return f"step size {value} is not known before deploy, so it cannot be checked"
    if size.get("Type") == "CAPACITY_PERCENT":
        return traffic.percent_problem(strategy, value)
    if isinstance(fleet_sizes, str):
        return fleet_sizes
    return traffic.step_problem(strategy, value, fleet_sizes)


def _endpoint(request: dict, lookups: Lookups) -> list[Violation]:
    config = lookups.endpoint_config(request.get("EndpointConfigName", ""))
    return _deployment(request, config, lookups, f"CreateEndpoint {request.get('EndpointName')}")


def _update_endpoint(request: dict, lookups: Lookups) -> list[Violation]:
    name = request.get("EndpointName", "")
    where = f"UpdateEndpoint {name}"
    new = lookups.endpoint_config(request.get("EndpointConfigName", ""))
    found = _deployment(request, new, lookups, where)
    excluded = [p.get("VariantPropertyType") for p in request.get("ExcludeRetainedVariantProperties", [])]
    if "DataCaptureConfig" in excluded:
        found.append(violation("retained-variant-properties", where, f"ExcludeRetainedVariantProperties {excluded}"))
    current = lookups.endpoint(name)
    old = lookups.endpoint_config(current["EndpointConfigName"]) if current else None
    if old and new:
        if _serverless_variants(new) and not _serverless_variants(old):
            found.append(violation("instances-to-serverless", where, "from instances to serverless"))
        before = {v["VariantName"]: v.get("InstanceType") for v in old.get("ProductionVariants", [])}
        for variant in new.get("ProductionVariants", []):
            scaled = variant["VariantName"] in lookups.scaling(name)
            if scaled and before.get(variant["VariantName"]) not in (None, variant.get("InstanceType")):
                found.append(
                    violation(
                        "autoscaled-instance-type",
                        where,
                        f"variant {variant['VariantName']} "
                        f"{before[variant['VariantName']]} -> {variant.get('InstanceType')}",
                    )
                )
    return found


_CHECKS = {
    "CreateTrainingJob": _training_job,
    "CreateModel": _model,
    "CreateEndpointConfig": _endpoint_config,
    "CreateEndpoint": _endpoint,
    "UpdateEndpoint": _update_endpoint,
}
