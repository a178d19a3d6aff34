"""IAM statements every SageMaker role of a stage needs, scoped to what it runs:
pulling its DLC images, writing its own logs, publishing its namespace's metrics.

The two SageMaker roles (`model_role.py`, `packaging_role.py`) add what is
theirs to these; each finding about a wildcard is acknowledged where the
wildcard is made.
"""

from __future__ import annotations

from typing import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.images import ContainerImage

# SageMaker publishes instance metrics (CPU, memory, disk) in these namespaces.
ENDPOINT_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"

NO_RESOURCE_LEVEL = (
    "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
    "permissions; PutMetricData is limited to SageMaker's namespace by condition."
)


def sagemaker_role(scope: Construct, description: str) -> iam.Role:
    """A role only SageMaker may assume, with no managed policies: its statements come after."""
    return iam.Role(scope, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"), description=description)


def log_group_arn(stack: Stack, name: str) -> str:
    return stack.format_arn(
        service="logs", resource="log-group", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
    )


def runtime_statements(
    stack: Stack, images: Sequence[ContainerImage], log_group: str, log_streams: str, namespace: str
) -> list[iam.PolicyStatement]:
    """Pull `images`, create `log_group` and write `log_streams` in it, publish metrics in `namespace`."""
    return [
        iam.PolicyStatement(
            sid="PullImages",
            actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            resources=sorted({image.repository_arn(stack.partition) for image in images}),
        ),
        iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        iam.PolicyStatement(sid="LogGroup", actions=["logs:CreateLogGroup"], resources=[log_group]),
        iam.PolicyStatement(
            sid="WriteLogStreams", actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_streams]
        ),
        iam.PolicyStatement(
            sid="PutMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
        ),
    ]
