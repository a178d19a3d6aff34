"""The role the SageMaker Model runs as: it reads exactly the artifact it serves.

It may read that one artifact (the pinned key, or the packaging job's output
for this deploy; of an uncompressed one, only the model version `model` names and
its manifest), pull the serving image, write its endpoint's logs and
metrics, describe its rollback alarms and write data capture. It may write
nothing under `artifacts/`: a serving container, which on serverless has
internet access, cannot change what a promotion copies. It lives in the
serving stack beside the Model, which depends on its policy (a Model created
before its role may read the artifact fails: "could not access model data").
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.compliance.nag import acknowledge_wildcards
from stacks.sagemaker_access import (
    NO_RESOURCE_LEVEL,
    alarm_arn,
    log_group_arn,
    read_statements,
    runtime_statements,
    sagemaker_role,
)
from stacks.stage.images import ContainerImage
from stacks.stage.names import ENDPOINT_METRICS_NAMESPACE, endpoint_log_group, served_objects
from stacks.stage.schema import ModelConfig


class ModelRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        artifact_key: str,
        artifact_is_prefix: bool,
        model: ModelConfig,
        image: ContainerImage,
        endpoint_name: str,
        capture_prefix: str | None = None,
        rollback_alarms: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = sagemaker_role(self, f"SageMaker Model of endpoint {endpoint_name}: reads the artifact it serves")
        # A prefix is listed whole (SageMaker lists it to download it), but only the
        # packaging job's layout of it is read: an object added elsewhere under it
        # fails the download instead of being served. An archive is the one key.
        pattern = f"{artifact_key}*" if artifact_is_prefix else artifact_key
        objects = served_objects(artifact_key, model.name, model.version) if artifact_is_prefix else (pattern,)
        logs = log_group_arn(stack, endpoint_log_group(endpoint_name))
        streams = f"{logs}:log-stream:*"
        statements = [
            *read_statements(bucket, pattern, "TheArtifact", objects),
            *runtime_statements(stack, [image], logs, streams, ENDPOINT_METRICS_NAMESPACE),
        ]
        reasons = {
            "*": NO_RESOURCE_LEVEL,
            streams: "SageMaker names the endpoint's log streams per variant and instance; the "
            "wildcard covers only this endpoint's own log group.",
        }
        if artifact_is_prefix:
            reasons[bucket.arn_for_objects(objects[0])] = (
                f"TF Serving loads every file of the served model version, {model.name}/{model.version}/ "
                "under this artifact's own prefix (the pinned one, or this deploy's packaging job's); "
                "their names are the model's, unknown at synth."
            )
        if rollback_alarms:
            # SageMaker reads the auto-rollback alarms as this role ("Auto-Rollback
            # Configuration and Monitoring"; rule rollback-alarms).
            statements.append(
                iam.PolicyStatement(
                    sid="DescribeRollbackAlarms",
                    actions=["cloudwatch:DescribeAlarms"],
                    resources=[alarm_arn(stack, name) for name in rollback_alarms],
                )
            )
        if capture_prefix:
            captures = bucket.arn_for_objects(f"{capture_prefix}*")
            reasons[captures] = (
                f"Data capture writes objects named by endpoint, variant and time under "
                f"'{capture_prefix}' of this stage's bucket."
            )
            statements.append(
                iam.PolicyStatement(sid="WriteDataCapture", actions=["s3:PutObject"], resources=[captures])
            )
        self.policy = iam.Policy(self, "Permissions", roles=[self.role], statements=statements)
        acknowledge_wildcards(self.policy, reasons)
