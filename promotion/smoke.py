"""`make smoke STAGE=...`: call a stage's endpoint and check the answer against the manifest.

It sends the artifact's own sample input (recorded in its manifest) the way the
seed's Predictor did, as TF Serving's JSON `{"instances": [...]}` (or, for a
sample given as named columns, `{"inputs": {...}}`), checks the answer is
shaped like the served signature's outputs, one row per instance, reports the
latency, and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable

from promotion.artifact_forms import ArtifactError, read_manifest
from promotion.deployed import deployed_stage
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
    if len(actual) != len(expected) or any(e is not None and e != a for a, e in zip(actual, expected)):
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
        return [f"the outputs are {sorted(answer) if isinstance(answer, dict) else answer!r}, "
                f"the signature has {sorted(outputs)}"]
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
        return [f"{len(instances)} instances sent, {len(predictions) if isinstance(predictions, list) else 'no'} predictions back"]
    problems = []
    for prediction in predictions:
        if len(outputs) == 1:
            (name, spec), = outputs.items()
            problems += shape_problems(name, prediction, (spec["shape"] or None) and spec["shape"][1:])
        elif not isinstance(prediction, dict) or set(prediction) != set(outputs):
            problems.append(f"a prediction's outputs are {sorted(prediction) if isinstance(prediction, dict) else prediction!r}, "
                            f"the signature has {sorted(outputs)}")
        else:
            for name, spec in outputs.items():
                problems += shape_problems(name, prediction[name], (spec["shape"] or None) and spec["shape"][1:])
    return problems


def smoke(runtime, endpoint: str, manifest: dict[str, Any],
          clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    sample = manifest.get("sample_input") or ["hello world"]
    outputs = manifest["signatures"][manifest["signature"]]["outputs"]
    # TF Serving's two request formats: a list is rows ("instances"), an object
    # of input name to values is columns ("inputs"), as the packager accepts them.
    columnar = isinstance(sample, dict)
    request = {"inputs": sample} if columnar else {"instances": sample}
    rows = len(next(iter(sample.values()))) if columnar else len(sample)
    started = clock()
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps(request),
    )
    latency_ms = (clock() - started) * 1000
    body = answer["Body"].read()
    try:
        response = json.loads(body)
    except ValueError:
        response = body.decode(errors="replace")
    return {
        "endpoint": endpoint,
        "instances": rows,
        "latency_ms": round(latency_ms, 1),
        "problems": check_columns(response, rows, outputs) if columnar else check_response(response, sample, outputs),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    stage = deployed_stage(args.stage)
    outputs = stage.serving_outputs("EndpointName", "ArtifactLocation")
    try:
        manifest = read_manifest(stage.client("s3"), outputs["ArtifactLocation"])
    except ArtifactError as error:
        raise UserError(str(error)) from error
    report = smoke(stage.client("sagemaker-runtime"), outputs["EndpointName"], manifest)
    print(json.dumps(report, indent=2))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(run(main))
