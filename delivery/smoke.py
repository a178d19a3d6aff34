"""`make smoke STAGE=...`: call a stage's endpoint and check the answer against the manifest.

It sends the artifact's own sample input (recorded in its manifest) the way the
seed's Predictor did, as TF Serving's JSON `{"instances": [...]}` (or, for a
sample given as named columns, `{"inputs": {...}}`), checks the answer is
shaped like the served signature's outputs, one row per instance, and holds
the values the packaging job's TensorFlow computed for that sample (within a
tolerance: serving and packaging TensorFlow builds may round differently),
reports the latency, and exits non-zero on any failure. The first call warms
the endpoint up (a serverless cold start, a model still loading) and retries
SageMaker's transient errors; the latency reported is the second call's.

An artifact whose manifest records no expected output can only be checked for
shape: in a promotion and in CI (`CI=true`) that is a failure, run by hand it
passes on shape alone and says the values were not checked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from delivery.artifact_forms import ArtifactError, read_manifest
from delivery.deployed import deployed_stage
from stacks.stage.names import ServingOutputs
from tools.cli import UserError, run


def nested_shape(value: Any) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def shape_problems(name: str, value: Any, expected: list[int | None] | None) -> list[str]:
    if expected is None:
        return []
    actual = nested_shape(value)
    if len(actual) != len(expected) or any(e is not None and e != a for a, e in zip(actual, expected, strict=True)):
        return [f"output {name!r} has shape {actual}, the signature says {expected}"]
    return []


def check_columns(response: Any, rows: int, outputs: dict[str, dict]) -> list[str]:
    """Problems with a columnar answer (`{"outputs": ...}`, sent for `{"inputs": ...}`)."""
    if not isinstance(response, dict) or "outputs" not in response:
        return [f"the response has no 'outputs': {str(response)[:200]}"]
    answer = response["outputs"]
    if len(outputs) == 1:
        answer = {next(iter(outputs)): answer}
    if not isinstance(answer, dict) or set(answer) != set(outputs):
        return [
            f"the outputs are {sorted(answer) if isinstance(answer, dict) else answer!r}, "
            f"the signature has {sorted(outputs)}"
        ]
    problems = []
    for name, spec in outputs.items():
        expected = [rows] + spec["shape"][1:] if spec["shape"] else None
        problems += shape_problems(name, answer[name], expected)
    return problems


def check_response(response: Any, instances: list, outputs: dict[str, dict]) -> list[str]:
    """Problems with a TF Serving predict response, none if it fits the signature."""
    if not isinstance(response, dict) or "predictions" not in response:
        return [f"the response has no 'predictions': {str(response)[:200]}"]
    predictions = response["predictions"]
    if not isinstance(predictions, list) or len(predictions) != len(instances):
        return [
            f"{len(instances)} instances sent, "
            f"{len(predictions) if isinstance(predictions, list) else 'no'} predictions back"
        ]
    problems = []
    for prediction in predictions:
        if len(outputs) == 1:
            ((name, spec),) = outputs.items()
            problems += shape_problems(name, prediction, (spec["shape"] or None) and spec["shape"][1:])
        elif not isinstance(prediction, dict) or set(prediction) != set(outputs):
            problems.append(
                f"a prediction's outputs are {sorted(prediction) if isinstance(prediction, dict) else prediction!r}, "
                f"the signature has {sorted(outputs)}"
            )
        else:
            for name, spec in outputs.items():
                problems += shape_problems(name, prediction[name], (spec["shape"] or None) and spec["shape"][1:])
    return problems


# Serving's TensorFlow may compute a float differently from the packaging job's
# (other build, other CPU): equal within these, as numpy.isclose decides.
RELATIVE_TOLERANCE = 1e-3
ABSOLUTE_TOLERANCE = 1e-4


def value_problems(name: str, actual: Any, expected: Any) -> list[str]:
    """Where `actual` differs from `expected` beyond the tolerance (first difference only)."""
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"output {name!r} is {str(actual)[:80]}, expected {str(expected)[:80]}"]
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            found = value_problems(f"{name}[{index}]", a, e)
            if found:
                return found
        return []
    if isinstance(expected, (int, float)) and not isinstance(expected, bool) and isinstance(actual, (int, float)):
        if abs(actual - expected) <= ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE * abs(expected):
            return []
    elif actual == expected:
        return []
    return [f"output {name!r} is {actual!r}, the packaged model answered {expected!r}"]


def expected_problems(response: Any, columnar: bool, expected: dict[str, list]) -> list[str]:
    """The answer's values against the packaging job's own (`sample_output`)."""
    if columnar:
        answer = response["outputs"]
        answer = answer if isinstance(answer, dict) else {next(iter(expected)): answer}
        return [p for name in sorted(expected) for p in value_problems(name, answer.get(name), expected[name])]
    problems = []
    for row, prediction in enumerate(response["predictions"]):
        for name in sorted(expected):
            actual = prediction if len(expected) == 1 else prediction.get(name)
            problems += value_problems(f"{name} of instance {row}", actual, expected[name][row])
    return problems[:5]


# SageMaker runtime errors worth another try: a cold or scaling endpoint, throttling.
TRANSIENT = {
    "ModelNotReadyException",
    "ServiceUnavailable",
    "ThrottlingException",
    "InternalFailure",
    "InternalDependencyException",
}
WARM_UP_SECONDS = 180


def invoke(
    runtime,
    endpoint: str,
    body: str,
    sleep: Callable[[float], None] = time.sleep,
    budget_seconds: float = WARM_UP_SECONDS,
) -> bytes:
    """One prediction, retried with backoff while SageMaker answers a transient error
    (or, on a cold start, a model error from a model still loading) within the budget."""
    waited, pause = 0.0, 2.0
    while True:
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint, ContentType="application/json", Accept="application/json", Body=body
            )
            return answer["Body"].read()
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code not in TRANSIENT | {"ModelError"} or waited + pause > budget_seconds:
                raise UserError(
                    f"Invoking {endpoint} failed: {code}: {error.response['Error'].get('Message', '')}"
                ) from error
            sleep(pause)
            waited, pause = waited + pause, min(pause * 2, 30.0)


NO_EXPECTED_OUTPUT = (
    "the artifact's manifest records no expected output (sample_output), so the answer's values could not be "
    "checked: package the model again with a sample_input in dev's packaging settings in cdk.json "
    "(make deploy STAGE=dev), then promote that artifact"
)


def smoke(
    runtime,
    endpoint: str,
    manifest: dict[str, Any],
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
    require_values: bool = True,
) -> dict[str, Any]:
    """The smoke report; with `require_values`, an artifact that gives nothing to
    compare the answer's values with is a problem."""
    sample = manifest.get("sample_input") or ["hello world"]
    outputs = manifest["signatures"][manifest["signature"]]["outputs"]
    # TF Serving's two request formats: a list is rows ("instances"), an object
    # of input name to values is columns ("inputs"), as the packager accepts them.
    columnar = isinstance(sample, dict)
    request = {"inputs": sample} if columnar else {"instances": sample}
    rows = len(next(iter(sample.values()))) if isinstance(sample, dict) else len(sample)
    body = json.dumps(request)
    invoke(runtime, endpoint, body, sleep)  # the warm-up
    started = clock()
    answer = invoke(runtime, endpoint, body, sleep)
    latency_ms = (clock() - started) * 1000
    try:
        response = json.loads(answer)
    except ValueError:
        response = answer.decode(errors="replace")
    problems = check_columns(response, rows, outputs) if columnar else check_response(response, sample, outputs)
    expected = manifest.get("sample_output")
    if expected and not problems:
        problems = expected_problems(response, columnar, expected)
    if not expected and require_values:
        problems.append(NO_EXPECTED_OUTPUT)
    return {
        "endpoint": endpoint,
        "instances": rows,
        "latency_ms": round(latency_ms, 1),
        "checked_values": bool(expected),
        "problems": problems,
    }


def smoke_stage(name: str, require_values: bool = True) -> dict[str, Any]:
    """The smoke report of deployed stage `name`: its endpoint against its artifact's manifest."""
    stage = deployed_stage(name)
    outputs = stage.serving_outputs(ServingOutputs.ENDPOINT_NAME, ServingOutputs.ARTIFACT_LOCATION)
    try:
        manifest = read_manifest(stage.client("s3"), outputs[ServingOutputs.ARTIFACT_LOCATION])
    except ArtifactError as error:
        raise UserError(str(error)) from error
    return smoke(
        stage.client("sagemaker-runtime"),
        outputs[ServingOutputs.ENDPOINT_NAME],
        manifest,
        require_values=require_values,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    # GitHub Actions sets CI=true: there a shape-only pass would let unchecked values through.
    report = smoke_stage(args.stage, require_values=os.environ.get("CI") == "true")
    print(json.dumps(report, indent=2))
    if not report["checked_values"] and not report["problems"]:
        print(f"Values NOT checked, only the answer's shape: {NO_EXPECTED_OUTPUT}.", file=sys.stderr)
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(run(main))
