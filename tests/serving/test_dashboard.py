"""Each stage's dashboard: traffic, errors, latency percentiles, capacity, alarms; its
name, one per region, and its URL in each partition's console."""

from __future__ import annotations

import json
import re

import pytest

from stacks.serving.dashboard import console_url
from stacks.stage.images import supported_regions
from stacks.stage.names import StageNames
from tests.conftest import STAGES

# DashboardName (CloudFormation reference, AWS::CloudWatch::Dashboard).
DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# Every metric a serverless endpoint publishes, by namespace ("Alarms and logs for tracking
# metrics from serverless endpoints", which calls the error metrics Invocations4XXErrors and
# Invocations5XXErrors; "Amazon SageMaker AI metrics in Amazon CloudWatch" spells them
# Invocation4XXErrors and Invocation5XXErrors, and places MemoryUtilization).
SERVERLESS_PUBLISHED = {
    ("AWS/SageMaker", name)
    for name in (
        "Invocations",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "ModelLatency",
        "OverheadLatency",
        "ModelSetupTime",
        "ServerlessConcurrentExecutionsUtilization",
        "ServerlessProvisionedConcurrencyExecutions",
        "ServerlessProvisionedConcurrencyUtilization",
        "ServerlessProvisionedConcurrencyInvocations",
        "ServerlessProvisionedConcurrencySpilloverInvocations",
    )
} | {("/aws/sagemaker/Endpoints", "MemoryUtilization")}


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


def graphed(body: dict) -> set[tuple[str, str]]:
    """Each metric graphed as (namespace, name); metric-math lines left out."""
    return {
        (line[0], line[1])
        for widget in body["widgets"]
        for line in widget["properties"].get("metrics", [])
        if isinstance(line[0], str)
    }


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
def test_every_stage_has_a_dashboard_of_its_endpoint_named_for_its_region(synthesized, stage):
    name, body = dashboard_body(synthesized, stage)
    assert name == f"tfhub-serving-{stage}-{synthesized(stage).stage.config.region}"
    assert {"Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "OverheadLatency"} <= (
        metrics_of(body)
    )
    text = json.dumps(body)
    for percentile in ("p50", "p90", "p99"):
        assert f'"stat": "{percentile}"' in text
    assert f'"EndpointName", "tfhub-serving-{stage}"' in text and '"VariantName", "AllTraffic"' in text


def test_capacity_is_concurrency_and_memory_when_serverless_and_utilization_on_instances(synthesized):
    _, dev = dashboard_body(synthesized, "dev")
    assert {
        ("AWS/SageMaker", "ServerlessConcurrentExecutionsUtilization"),
        ("AWS/SageMaker", "ModelSetupTime"),
        ("/aws/sagemaker/Endpoints", "MemoryUtilization"),
    } <= graphed(dev)
    # Only what serverless endpoints publish, each where it is published: no CPU or disk,
    # and no instance count (InvocationsPerInstance) either.
    assert graphed(dev) <= SERVERLESS_PUBLISHED
    assert "invocations / per_instance" not in metrics_of(dev)
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
    name, _ = dashboard_body(synthesized, stage)
    region = synthesized(stage).stage.config.region
    (output,) = synthesized(stage).serving.find_outputs("DashboardUrl").values()
    assert output["Value"] == f"https://console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={name}"


def test_two_regions_of_one_account_get_two_dashboards_each_a_valid_name():
    """Dashboards are global to an account; dev's region follows the user's environment."""
    longest = StageNames("p", "s" * 61)  # the longest endpoint name SageMaker takes: 63
    assert len(longest.endpoint) == 63
    names = [longest.dashboard(region) for region in supported_regions()]
    assert len(set(names)) == len(names)
    assert all(DASHBOARD_NAME.match(name) for name in names), names


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("eu-west-1", "console.aws.amazon.com"),
        ("cn-northwest-1", "console.amazonaws.cn"),
        ("us-gov-west-1", "console.amazonaws-us-gov.com"),
    ],
)
def test_the_url_opens_the_console_of_the_regions_partition(region, host):
    assert console_url(region, "d") == f"https://{host}/cloudwatch/home?region={region}#dashboards:name=d"


def test_every_region_a_stage_may_use_has_a_console_and_no_other_region_gets_a_guessed_one():
    for region in supported_regions():
        assert console_url(region, "d").startswith("https://console.")
    # A partition without a known console host (here one the project does not support).
    with pytest.raises(ValueError, match="us-iso-east-1"):
        console_url("us-iso-east-1", "d")
