"""The role the packaging training job runs as: it writes only its stage's job folders.

It reads the placeholder training data (the `train` channel), writes its output
under `artifacts/packaging/<job-name-prefix>-*` (the bucket policy lets no other
principal write there, `bucket_guard.py`), pulls the training image, writes its
logs and metrics, and uses the optional volume key only through SageMaker
(`kms:GrantIsForAWSResource`). It reads its source from the CDK assets bucket
through a grant the serving stack adds (`packaging.py`). It lives in the
storage stack so the bucket policy can name it.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.compliance.nag import acknowledge_wildcards
from stacks.sagemaker_access import (
    NO_RESOURCE_LEVEL,
    log_group_arn,
    read_statements,
    runtime_statements,
    sagemaker_role,
)
from stacks.stage.images import ContainerImage
from stacks.stage.names import TRAINING_LOG_GROUP, TRAINING_METRICS_NAMESPACE


class PackagingRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        job_name_prefix: str,
        image: ContainerImage,
        training_data_prefix: str,
        output_prefix: str,
        volume_key_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = sagemaker_role(self, f"SageMaker packaging jobs {job_name_prefix}-*: write only their own folders")
        training_data = bucket.arn_for_objects(f"{training_data_prefix}*")
        job_folders = bucket.arn_for_objects(f"{output_prefix}{job_name_prefix}-*")
        logs = log_group_arn(stack, TRAINING_LOG_GROUP)
        streams = f"{logs}:log-stream:{job_name_prefix}-*"
        statements = [
            *read_statements(bucket, f"{training_data_prefix}*", "TrainingData"),
            iam.PolicyStatement(
                sid="WriteJobFolders", actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[job_folders]
            ),
            *runtime_statements(stack, [image], logs, streams, TRAINING_METRICS_NAMESPACE),
        ]
        if volume_key_arn:
            statements += [
                iam.PolicyStatement(
                    sid="UseVolumeKey",
                    actions=["kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[volume_key_arn],
                ),
                # SageMaker creates a grant for the job's volume; nobody else gets one.
                iam.PolicyStatement(
                    sid="GrantVolumeKeyToSageMaker",
                    actions=["kms:CreateGrant"],
                    resources=[volume_key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                ),
            ]
        self.policy = iam.Policy(self, "Permissions", roles=[self.role], statements=statements)
        acknowledge_wildcards(
            self.policy,
            {
                "*": NO_RESOURCE_LEVEL,
                training_data: f"The placeholder training data under '{training_data_prefix}', "
                "the job's `train` channel.",
                job_folders: "Each job writes under a folder named after it, chosen at deploy time; the "
                "wildcard covers only this stage's job-name prefix.",
                streams: "SageMaker names log streams per job and host; the wildcard covers only this "
                "stage's packaging jobs.",
            },
        )
