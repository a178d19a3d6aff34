"""Lambdas and the compliance gates: the project's own Python functions (a role
that may write its logs, the current runtime, a log group that expires), and the
one Aspect that clears every Lambda of a stack, CDK's own included, for cdk-nag
and checkov."""

from __future__ import annotations

import pathlib

import jsii
from aws_cdk import Acknowledgment, CfnResource, Duration, IAspect, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from stacks.compliance import checkov
from stacks.compliance.checkov import DEPLOY_TIME_FUNCTION, HANDLER_LOGS

BASIC_EXECUTION_FINDING = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
)


_BASIC_EXECUTION = "service-role/AWSLambdaBasicExecutionRole"


@jsii.implements(IAspect)
class LambdasAndTheirLogs:
    """The one place every Lambda function, its role and its log group get their
    compliance metadata, CDK's own (Provider framework, AwsCustomResource,
    auto-delete) included: all of them run only for deploys or on a schedule,
    log only progress messages, and write logs through the basic execution policy."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource) and node.cfn_resource_type == "AWS::Lambda::Function":
            checkov.skip(node, DEPLOY_TIME_FUNCTION)
        elif isinstance(node, CfnResource) and node.cfn_resource_type == "AWS::Logs::LogGroup":
            checkov.skip(node, HANDLER_LOGS)
        elif isinstance(node, iam.CfnRole) and _is_lambda_logging_role(node):
            Validations.of(node).acknowledge(
                Acknowledgment(
                    id=BASIC_EXECUTION_FINDING,
                    reason="A Lambda's role: the AWS-managed basic execution policy only allows writing "
                    "the function's own CloudWatch Logs.",
                )
            )


def _is_lambda_logging_role(role: iam.CfnRole) -> bool:
    """A role Lambda assumes that holds the basic execution policy."""
    stack = Stack.of(role)
    trust = str(stack.resolve(role.assume_role_policy_document))
    return "lambda.amazonaws.com" in trust and _BASIC_EXECUTION in str(stack.resolve(role.managed_policy_arns))


def lambda_role(scope: Construct, construct_id: str) -> iam.Role:
    return iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(_BASIC_EXECUTION)],
    )


def log_group(scope: Construct, construct_id: str) -> logs.LogGroup:
    group = logs.LogGroup(
        scope, construct_id, retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
    )
    return group


DEFAULT_TIMEOUT = Duration.minutes(1)


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    source: pathlib.Path,
    handler: str,
    role: iam.IRole,
    environment: dict[str, str],
    timeout: Duration = DEFAULT_TIMEOUT,
    memory_mb: int = 128,
) -> lambda_.Function:
    return lambda_.Function(
        scope,
        construct_id,
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler=handler,
        code=lambda_.Code.from_asset(str(source), exclude=["__pycache__", "*.pyc"]),
        role=role,
        timeout=timeout,
        memory_size=memory_mb,
        environment=environment,
        log_group=log_group(scope, f"{construct_id}Logs"),
    )
