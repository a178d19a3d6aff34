"""IAM statements every SageMaker role of a stage needs, scoped to what it runs:
pulling its DLC images, writing its own logs, publishing its namespace's metrics.

The two SageMaker roles (`model_role.py`, `packaging_role.py`) add what is
theirs to these; each finding about a wildcard is acknowledged where the
wildcard is made.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.stage.images import ContainerImage

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


def read_statements(
    bucket: s3.IBucket, pattern: str, what: str, objects: Sequence[str] | None = None
) -> list[iam.PolicyStatement]:
    """Get the objects matching `pattern` (a key, or a prefix ending in '*'), or only
    `objects` among them when given, and list only `pattern`: sids Read<what> and List<what>."""
    readable = [bucket.arn_for_objects(key) for key in (objects or [pattern])]
    return [
        iam.PolicyStatement(sid=f"Read{what}", actions=["s3:GetObject"], resources=readable),
        iam.PolicyStatement(
            sid=f"List{what}",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [pattern]}},
        ),
    ]


def alarm_arn(stack: Stack, name: str) -> str:
    """An alarm's ARN from its name: alarms are named by config, never referenced, so
    a policy naming them makes no cycle with the alarms that use it."""
    return stack.format_arn(
        service="cloudwatch", resource="alarm", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
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
