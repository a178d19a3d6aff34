"""The serving stack's smaller constructs on their own, in a bare stack: the
dashboard and the alarms take only their narrow props."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from stacks.serving.dashboard import EndpointDashboard
from stacks.serving.operations import EndpointAlarms
from stacks.stage.schema import Alarms

# Each test synthesizes a bare stack.
pytestmark = pytest.mark.synth

ENV = cdk.Environment(account="111111111111", region="eu-west-1")


def bare() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "Bare", env=ENV)


def dashboard_text(template: Template) -> str:
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return "".join(part if isinstance(part, str) else "<token>" for part in parts)


@pytest.mark.parametrize("serverless", [True, False], ids=["serverless", "instances"])
def test_the_dashboard_graphs_the_endpoint_it_is_given_by_its_kind(serverless):
    stack = bare()
    dashboard = EndpointDashboard(
        stack, "Dashboard", endpoint_name="bare-endpoint", dashboard_name="bare-board", serverless=serverless
    )
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": "bare-board"})
    text = dashboard_text(template)
    assert '"EndpointName","bare-endpoint"' in text.replace(" ", "")
    assert ("ServerlessConcurrentExecutionsUtilization" in text) is serverless
    assert ("invocations / per_instance" in text) is not serverless
    assert '"type":"alarm"' not in text.replace(" ", "")  # none given, none shown
    assert dashboard.url == "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards:name=bare-board"


def test_the_alarms_use_the_names_and_limits_they_are_given():
    stack = bare()
    settings = Alarms(emails=("ops@example.com",), max_model_latency_ms=750, max_5xx_errors=3)
    alarms = EndpointAlarms(
        stack, "Alarms", endpoint_name="bare-endpoint", names=("bare-5xx", "bare-latency"), settings=settings
    )
    EndpointDashboard(
        stack,
        "Dashboard",
        endpoint_name="bare-endpoint",
        dashboard_name="bare-board",
        serverless=False,
        alarms=(alarms.errors, alarms.latency),
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"AlarmName": "bare-5xx", "MetricName": "Invocation5XXErrors", "Threshold": 3},
    )
    # SageMaker reports latency in microseconds.
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"AlarmName": "bare-latency", "MetricName": "ModelLatency", "Threshold": 750_000},
    )
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    assert '"type":"alarm"' in dashboard_text(template).replace(" ", "")
