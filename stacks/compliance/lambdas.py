"""The project's own Python Lambdas: a role that may write its logs, a function
on the current runtime with a log group that expires, both cleared for the
compliance gates."""

from __future__ import annotations

import pathlib

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

BASIC_EXECUTION_FINDING = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
)


def lambda_role(scope: Construct, construct_id: str) -> iam.Role:
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole")],
    )
    Validations.of(role).acknowledge(
        Acknowledgment(
            id=BASIC_EXECUTION_FINDING,
            reason="The AWS-managed basic execution policy only allows writing the function's own logs.",
        )
    )
    return role


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
