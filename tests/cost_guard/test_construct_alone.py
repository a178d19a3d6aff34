"""IdleTeardown on its own, in a bare stack: an hourly check of the endpoint it is
given, allowed to delete only the serving stack it is given."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.cost_guard.construct import IdleTeardown

# Each test synthesizes a bare stack.
pytestmark = pytest.mark.synth


def test_the_teardown_watches_its_endpoint_and_may_delete_only_its_stack():
    stack = cdk.Stack(cdk.App(), "Bare", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    IdleTeardown(stack, "Guard", endpoint_name="bare-endpoint", serving_stack="bare-serving", idle_hours=6)
    template = Template.from_stack(stack)
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    environment = function["Properties"]["Environment"]["Variables"]
    assert (environment["ENDPOINT_NAME"], environment["SERVING_STACK"], environment["IDLE_HOURS"]) == (
        "bare-endpoint",
        "bare-serving",
        "6",
    )
    template.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(1 hour)"})
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["DeleteTheServingStack"]["Action"] == [
        "cloudformation:DescribeStacks",
        "cloudformation:DeleteStack",
    ]
    assert "stack/bare-serving/*" in json.dumps(statements["DeleteTheServingStack"]["Resource"])
    assert "endpoint/bare-endpoint" in json.dumps(statements["DescribeTheEndpoint"]["Resource"])
