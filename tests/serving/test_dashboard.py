"""Each stage's dashboard: traffic, errors, latency percentiles, capacity, alarms; its URL."""

from __future__ import annotations

import json

import pytest

from tests.conftest import STAGES


def dashboard_body(synthesized, stage: str) -> tuple[str, dict]:
    serving = synthesized(stage).serving
    (dashboard,) = serving.find_resources("AWS::CloudWatch::Dashboard").values()
    properties = dashboard["Properties"]
    body = properties["DashboardBody"]
    # The body is a Fn::Join of literal JSON and tokens (the region, alarm ARNs).
    text = (
        "".join(part if isinstance(part, str) else "0" for part in body["Fn::Join"][1])
        if isinstance(body, dict)
        else body
    )
    return properties["DashboardName"], json.loads(text)


def metrics_of(body: dict) -> set[str]:
    """The metric names graphed, and each metric-math line as its expression."""
    names = set()
    for widget in body["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line[0], dict) and "expression" in line[0]:
                names.add(line[0]["expression"])
                continue
            names.add(next(item for item in line if isinstance(item, str) and not item.startswith(("AWS/", "/aws"))))
    return names


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_has_a_dashboard_of_its_endpoint(synthesized, stage):
    name, body = dashboard_body(synthesized, stage)
    assert name == f"tfhub-serving-{stage}"
    assert {"Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "OverheadLatency"} <= (
        metrics_of(body)
    )
    text = json.dumps(body)
    for percentile in ("p50", "p90", "p99"):
        assert f'"stat": "{percentile}"' in text
    assert f'"EndpointName", "tfhub-serving-{stage}"' in text and '"VariantName", "AllTraffic"' in text


def test_capacity_is_concurrency_and_memory_when_serverless_and_utilization_on_instances(synthesized):
    _, dev = dashboard_body(synthesized, "dev")
    assert "ServerlessConcurrentExecutionsUtilization" in metrics_of(dev)
    assert "CPUUtilization" not in metrics_of(dev)
    assert "invocations / per_instance" not in metrics_of(dev)
    # Memory, as the serverless monitoring guide lists it: in the instance namespace.
    (memory,) = [
        line
        for widget in dev["widgets"]
        for line in widget["properties"].get("metrics", [])
        if "MemoryUtilization" in line
    ]
    assert memory[0] == "/aws/sagemaker/Endpoints"
    _, prod = dashboard_body(synthesized, "prod")
    assert {"CPUUtilization", "MemoryUtilization", "DiskUtilization"} <= metrics_of(prod)
    # The instance count, derived: all invocations over those per instance.
    assert {"invocations / per_instance", "Invocations", "InvocationsPerInstance"} <= metrics_of(prod)


def test_the_alarms_are_on_the_dashboard_where_a_stage_has_them(synthesized):
    _, dev = dashboard_body(synthesized, "dev")
    assert all(widget["type"] != "alarm" for widget in dev["widgets"])
    _, prod = dashboard_body(synthesized, "prod")
    (alarms,) = [widget for widget in prod["widgets"] if widget["type"] == "alarm"]
    assert len(alarms["properties"]["alarms"]) == 2


@pytest.mark.parametrize("stage", STAGES)
def test_the_dashboards_url_is_an_output(synthesized, stage):
    outputs = synthesized(stage).serving.find_outputs("DashboardUrl")
    (output,) = outputs.values()
    value = json.dumps(output["Value"])
    assert "console.aws.amazon.com/cloudwatch/home" in value and f"#dashboards:name=tfhub-serving-{stage}" in value
