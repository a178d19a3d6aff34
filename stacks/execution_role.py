"""The SageMaker execution role, least privilege.

It may read its own bucket's prefixes, pull the DLC repositories it uses, and
write its endpoint's logs and metrics; with a packaging job, also read the
training data, write under the job's output prefix, and write the job's logs
and metrics. Nothing else: no managed full-access policies, no `*` actions. It
lives in the storage stack beside the bucket, so its policy is attached before
the serving stack creates the Model (a Model created before its role's policy
exists fails: "could not access model data").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.images import ContainerImage
from stacks.nag import acknowledge_wildcards

# SageMaker publishes instance metrics (CPU, memory, disk) in these namespaces.
ENDPOINT_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@dataclass(frozen=True)
class TrainingAccess:
    """What the packaging job needs beyond serving."""

    read_prefix: str
    write_prefix: str
    job_name_prefix: str
    volume_key_arn: str | None


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
        training: TrainingAccess | None = None,
        capture_prefix: str | None = None,
        rollback_alarms: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker execution role for endpoint {endpoint_name}",
        )
        prefixes = list(read_prefixes) + ([training.read_prefix] if training else [])
        reads = [bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]
        endpoint_logs = _log_group(stack, f"/aws/sagemaker/Endpoints/{endpoint_name}")
        log_streams = {f"{endpoint_logs}:log-stream:*": "this endpoint's own log group"}
        namespaces = [ENDPOINT_METRICS_NAMESPACE]
        statements = [
            iam.PolicyStatement(sid="ReadOwnPrefixes", actions=["s3:GetObject"], resources=reads),
            iam.PolicyStatement(
                sid="ListOwnPrefixes",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
            ),
            iam.PolicyStatement(
                sid="PullImages",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=sorted({image.repository_arn(stack.partition) for image in images}),
            ),
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                sid="EndpointLogGroup", actions=["logs:CreateLogGroup"], resources=[endpoint_logs]
            ),
        ]
        acknowledged = {
            arn: f"Objects under '{prefix}' are written by jobs and promotions, not known at "
            "synth; reads stay inside this stage's own bucket and prefix."
            for prefix, arn in zip(prefixes, reads)
        }
        if training:
            training_logs = _log_group(stack, TRAINING_LOG_GROUP)
            log_streams[f"{training_logs}:log-stream:{training.job_name_prefix}*"] = (
                "streams of this stage's packaging jobs, named by SageMaker per job and host"
            )
            namespaces.append(TRAINING_METRICS_NAMESPACE)
            writes = bucket.arn_for_objects(f"{training.write_prefix}*")
            acknowledged[writes] = (
                f"The packaging job writes its artifact under '{training.write_prefix}' in a "
                "folder named after the job, which is chosen at deploy time."
            )
            statements += [
                iam.PolicyStatement(
                    sid="WriteJobOutput",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[writes],
                ),
                iam.PolicyStatement(
                    sid="TrainingLogGroup", actions=["logs:CreateLogGroup"], resources=[training_logs]
                ),
            ]
            if training.volume_key_arn:
                statements.append(
                    iam.PolicyStatement(
                        sid="TrainingVolumeKey",
                        actions=["kms:CreateGrant", "kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey"],
                        resources=[training.volume_key_arn],
                    )
                )
        if rollback_alarms:
            # SageMaker reads the auto-rollback alarms as this role ("Auto-Rollback
            # Configuration and Monitoring"; rule rollback-alarms).
            statements.append(
                iam.PolicyStatement(
                    sid="DescribeRollbackAlarms",
                    actions=["cloudwatch:DescribeAlarms"],
                    resources=[
                        stack.format_arn(service="cloudwatch", resource="alarm", resource_name=name,
                                         arn_format=ArnFormat.COLON_RESOURCE_NAME)
                        for name in rollback_alarms
                    ],
                )
            )
        if capture_prefix:
            captures = bucket.arn_for_objects(f"{capture_prefix}*")
            acknowledged[captures] = (
                f"Data capture writes objects named by endpoint, variant and time under "
                f"'{capture_prefix}' of this stage's bucket."
            )
            statements.append(
                iam.PolicyStatement(sid="WriteDataCapture", actions=["s3:PutObject"], resources=[captures])
            )
        statements += [
            iam.PolicyStatement(
                sid="WriteLogStreams",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=list(log_streams),
            ),
            iam.PolicyStatement(
                sid="PutMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": namespaces}},
            ),
        ]
        self.policy = iam.Policy(self, "Permissions", roles=[self.role], statements=statements)

        acknowledged["*"] = (
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
            "permissions; PutMetricData is limited to SageMaker's namespaces by condition."
        )
        for arn, whose in log_streams.items():
            acknowledged[arn] = f"SageMaker names log streams per instance; the wildcard covers {whose}."
        acknowledge_wildcards(self.policy, acknowledged)


def _log_group(stack: Stack, name: str) -> str:
    return stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
