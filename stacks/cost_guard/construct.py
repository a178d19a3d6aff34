"""Cost guard for instance-backed dev endpoints: take an idle endpoint down.

An hourly rule runs `stacks/cost_guard/handler/handler.py`, which deletes the
stage's serving stack through CloudFormation once the endpoint has had no
invocations for the configured hours. It lives in the storage stack, which
outlives serving, so it keeps watching across redeploys.
"""

from __future__ import annotations

import pathlib

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.compliance import checkov
from stacks.compliance.lambdas import lambda_role, python_function
from stacks.compliance.nag import acknowledge_wildcards
from stacks.serving.operations import VARIANT_NAME

HANDLER_SOURCE = pathlib.Path(__file__).resolve().parent / "handler"


class IdleTeardown(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, endpoint_name: str, serving_stack: str, idle_hours: int
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        role = lambda_role(self, "Role")
        serving_stack_arn = stack.format_arn(
            service="cloudformation", resource="stack", resource_name=f"{serving_stack}/*"
        )
        policy = iam.Policy(
            self,
            "Permissions",
            roles=[role],
            statements=[
                iam.PolicyStatement(sid="ReadInvocations", actions=["cloudwatch:GetMetricStatistics"], resources=["*"]),
                iam.PolicyStatement(
                    sid="DescribeTheEndpoint",
                    actions=["sagemaker:DescribeEndpoint"],
                    resources=[stack.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name)],
                ),
                iam.PolicyStatement(
                    sid="DeleteTheServingStack",
                    actions=["cloudformation:DescribeStacks", "cloudformation:DeleteStack"],
                    resources=[serving_stack_arn],
                ),
            ],
        )
        acknowledge_wildcards(
            policy,
            {
                "*": "cloudwatch:GetMetricStatistics has no resource-level permissions.",
                serving_stack_arn: "A stack ARN ends in an id CloudFormation assigns; the wildcard "
                "covers only this stage's serving stack.",
            },
        )
        self.function = python_function(
            self,
            "Function",
            source=HANDLER_SOURCE,
            handler="handler.handler",
            role=role,
            environment={
                "ENDPOINT_NAME": endpoint_name,
                "SERVING_STACK": serving_stack,
                "IDLE_HOURS": str(idle_hours),
                "VARIANT_NAME": VARIANT_NAME,
            },
        )
        self.function.node.add_dependency(policy)
        checkov.skip(
            self.function,
            {
                "CKV_AWS_115": "Runs once an hour; reserving concurrency would only take it away from the account.",
                "CKV_AWS_116": "A failed run is logged and the next hour's run repeats the check; a "
                "dead-letter queue would hold nothing to act on.",
            },
        )
        events.Rule(
            self,
            "Hourly",
            description=f"Deletes {serving_stack} when {endpoint_name} has been idle {idle_hours} h",
            schedule=events.Schedule.rate(Duration.hours(1)),
            targets=[targets.LambdaFunction(self.function)],
        )
