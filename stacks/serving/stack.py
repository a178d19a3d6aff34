"""Serving: the SageMaker Model, EndpointConfig and Endpoint for one stage.

Model and EndpointConfig are immutable in SageMaker, so their names are left
to CloudFormation: a change replaces them and the Endpoint, which keeps the
stable name clients call, is updated in place to the new config. The Model's role
reads exactly the artifact it serves (`model_role.py`); the Model depends on
the role's policy, so it never races its permissions.
"""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.model_packaging.construct import PackagingJob
from stacks.serving.dashboard import EndpointDashboard
from stacks.serving.endpoint import TfServingEndpoint
from stacks.serving.model_role import ModelRole
from stacks.stage.images import serving_image
from stacks.stage.names import DATA_CAPTURE_PREFIX, ServingOutputs, StageNames
from stacks.stage.schema import ServerlessServing, StageConfig

_SAMPLE_REQUEST = {"instances": ["hello world"]}


class ServingStack(Stack):
    """Composes the endpoint (and the packaging job) from the storage stack's exports."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        names: StageNames,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        bucket = s3.Bucket.from_bucket_attributes(
            self,
            "ArtifactBucket",
            bucket_arn=Fn.import_value(names.bucket_arn_export),
            bucket_name=Fn.import_value(names.bucket_name_export),
        )
        if config.packaging:
            # What the packaging job wrote: a model.tar.gz for serverless, else a prefix.
            packaging_role = iam.Role.from_role_arn(self, "PackagingRole", Fn.import_value(names.packaging_role_export))
            self.packaging = PackagingJob(
                self,
                "Packaging",
                settings=config.packaging,
                model=config.model,
                region=config.region,
                job_name_prefix=config.job_name_prefix,
                compression=config.packaging_compression,
                serverless_memory_mb=config.serving.memory_mb
                if isinstance(config.serving, ServerlessServing)
                else None,
                tags=config.resource_tags,
                bucket=bucket,
                role=packaging_role,
            )
            artifact_key, is_prefix = self.packaging.artifact_key, config.packaging_compression == "NONE"
            CfnOutput(self, ServingOutputs.TREE_DIGEST, value=self.packaging.tree_digest)
            CfnOutput(self, ServingOutputs.PACKAGING_JOB_NAME, value=self.packaging.job_name)
        else:
            if config.pinned_artifact_key is None:  # the config gives every stage one or the other
                raise ValueError(f"stage {config.stage} neither packages nor pins an artifact")
            artifact_key = config.pinned_artifact_key
            is_prefix = artifact_key.endswith("/")
            if config.pinned_artifact_digest:
                CfnOutput(self, ServingOutputs.TREE_DIGEST, value=config.pinned_artifact_digest)
        artifact_uri = f"s3://{bucket.bucket_name}/{artifact_key}"
        image = serving_image(config.region, config.instance_type)
        model_role = ModelRole(
            self,
            "ModelRole",
            bucket=bucket,
            artifact_key=artifact_key,
            artifact_is_prefix=is_prefix,
            model=config.model,
            image=image,
            endpoint_name=config.endpoint_name,
            capture_prefix=DATA_CAPTURE_PREFIX if config.data_capture_percent else None,
            rollback_alarms=config.alarm_names if config.rolls_back_on_alarms else (),
        )
        self.serving = TfServingEndpoint(
            self,
            "TfServing",
            endpoint_name=config.endpoint_name,
            model_name=config.model.name,
            serving=config.serving,
            image=image,
            model_role=model_role,
            model_data_uri=artifact_uri,
            model_data_is_prefix=is_prefix,
            alarms=config.alarms,
            alarm_names=config.alarm_names,
            deployment=config.deployment,
            rollback_alarms=config.alarm_names if config.rolls_back_on_alarms else (),
            data_capture_percent=config.data_capture_percent,
            data_capture_uri=f"s3://{bucket.bucket_name}/{DATA_CAPTURE_PREFIX}",
        )

        alarms = self.serving.alarms
        self.dashboard = EndpointDashboard(
            self,
            "Dashboard",
            endpoint_name=config.endpoint_name,
            dashboard_name=config.names.dashboard(config.region),
            serverless=config.is_serverless,
            alarms=(alarms.errors, alarms.latency) if alarms else (),
        )
        CfnOutput(
            self, ServingOutputs.DASHBOARD_URL, value=self.dashboard.url, description="The stage's CloudWatch dashboard"
        )
        CfnOutput(self, ServingOutputs.ENDPOINT_NAME, value=self.serving.endpoint.attr_endpoint_name)
        CfnOutput(self, ServingOutputs.ARTIFACT_LOCATION, value=artifact_uri)
        CfnOutput(
            self,
            ServingOutputs.INVOKE_COMMAND,
            description="Calls the endpoint with the AWS CLI and prints the response",
            value=invoke_command(config.endpoint_name, config.region),
        )


def invoke_command(endpoint_name: str, region: str) -> str:
    body = json.dumps(_SAMPLE_REQUEST)
    return (
        f"aws sagemaker-runtime invoke-endpoint --region {region} "
        f"--endpoint-name {endpoint_name} --content-type application/json "
        f"--cli-binary-format raw-in-base64-out --body '{body}' /dev/stdout"
    )
