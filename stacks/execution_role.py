"""The SageMaker execution role, least privilege.

It may read its own bucket's prefixes, pull the DLC repositories it uses, and
write its endpoint's logs and metrics. Nothing else: no managed full-access
policies, no `*` actions. It lives in the storage stack beside the bucket, so
its policy is attached before the serving stack creates the Model (a Model
created before its role's policy exists fails: "could not access model data").
"""

from __future__ import annotations

from typing import Sequence

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.images import ContainerImage

# SageMaker hosting publishes instance metrics (CPU, memory, disk) here.
ENDPOINT_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"


class SageMakerExecutionRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        read_prefixes: Sequence[str],
        images: Sequence[ContainerImage],
        endpoint_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker execution role for endpoint {endpoint_name}",
        )
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        log_streams = f"{log_group}:log-stream:*"
        repositories = sorted({image.repository_arn(stack.partition) for image in images})

        object_arns = [bucket.arn_for_objects(f"{prefix}*") for prefix in read_prefixes]
        self.policy = iam.Policy(
            self,
            "Permissions",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadOwnPrefixes",
                    actions=["s3:GetObject"],
                    resources=object_arns,
                ),
                iam.PolicyStatement(
                    sid="ListOwnPrefixes",
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in read_prefixes]}},
                ),
                iam.PolicyStatement(
                    sid="PullImages",
                    actions=[
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                    ],
                    resources=repositories,
                ),
                iam.PolicyStatement(
                    sid="EcrLogin",
                    actions=["ecr:GetAuthorizationToken"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="EndpointLogGroup",
                    actions=["logs:CreateLogGroup"],
                    resources=[log_group],
                ),
                iam.PolicyStatement(
                    sid="EndpointLogStreams",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_streams],
                ),
                iam.PolicyStatement(
                    sid="EndpointMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={
                        "StringEquals": {"cloudwatch:namespace": ENDPOINT_METRICS_NAMESPACE}
                    },
                ),
            ],
        )
        # cdk-nag reports each wildcard resource as its own finding; each is
        # acknowledged by name, so a new wildcard still fails the gate.
        acknowledgments = {
            "*": "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no "
            "resource-level permissions; PutMetricData is limited to the endpoint "
            "namespace by condition.",
            log_streams: "SageMaker names a log stream per instance; the wildcard covers "
            "only streams of this endpoint's own log group.",
        }
        for prefix, arn in zip(read_prefixes, object_arns):
            acknowledgments[arn] = (
                f"Artifact keys under '{prefix}' are written by jobs and promotions, not "
                "known at synth; reads stay inside this stage's own bucket and prefix."
            )
        for resource, reason in acknowledgments.items():
            finding = f"AwsSolutions-IAM5[Resource::{_as_nag_prints(stack, resource)}]"
            Validations.of(self.policy).acknowledge(Acknowledgment(id=finding, reason=reason))


def _as_nag_prints(stack: Stack, value: str) -> str:
    """Render `value` as cdk-nag names it in a finding: <AWS::Param>, <LogicalId.Attr>."""
    resolved = stack.resolve(value)
    if isinstance(resolved, str):
        return resolved
    return "".join(_part(part) for part in resolved["Fn::Join"][1])


def _part(part: str | dict) -> str:
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return f"<{part['Ref']}>"
    logical_id, attribute = part["Fn::GetAtt"]
    return f"<{logical_id}.{attribute}>"
