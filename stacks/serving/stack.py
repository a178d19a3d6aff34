"""Serving: the SageMaker Model, EndpointConfig and Endpoint for one stage.

Model and EndpointConfig are immutable in SageMaker, so their names are left
to CloudFormation: a change replaces them and the Endpoint, which keeps the
stable name clients call, is updated in place to the new config. The Model's role
reads exactly the artifact it serves (`model_role.py`); the Model depends on
the role's policy, so it never races its permissions.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Duration, Fn, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.compliance import checkov
from stacks.model_packaging.construct import PackagingJob
from stacks.rulebook.limits import has_instance_store
from stacks.serving.model_role import ModelRole
from stacks.serving.operations import VARIANT_NAME, EndpointAlarms, EndpointAutoscaling, deployment_config
from stacks.stage.images import ContainerImage, serving_image
from stacks.stage.names import StageNames
from stacks.stage.schema import Alarms, Deployment, InstanceServing, ServerlessServing, StageConfig
from stacks.storage.stack import DATA_CAPTURE_PREFIX

_SAMPLE_REQUEST = {"instances": ["hello world"]}


class TfServingEndpoint(Construct):
    """A TF Serving model behind a real-time or serverless endpoint.

    `endpoint_name` serves `model_name` from `model_data_uri` on `serving`; with
    `alarms`, the alarms `alarm_names` watch it, and a `deployment` shifts
    traffic on update, rolled back on `rollback_alarms`; with
    `data_capture_percent`, requests are sampled to `data_capture_uri`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        model_name: str,
        serving: InstanceServing | ServerlessServing,
        image: ContainerImage,
        model_role: ModelRole,
        model_data_uri: str,
        model_data_is_prefix: bool,
        alarms: Alarms | None = None,
        alarm_names: tuple[str, str] = ("", ""),
        deployment: Deployment | None = None,
        rollback_alarms: tuple[str, ...] = (),
        data_capture_percent: int | None = None,
        data_capture_uri: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Serverless endpoints do not support network isolation; on instances
        # the container gets no network access at all.
        isolated = isinstance(serving, InstanceServing)
        container = sagemaker.CfnModel.ContainerDefinitionProperty(
            image=image.uri,
            environment={"SAGEMAKER_TFS_DEFAULT_MODEL_NAME": model_name},
            **_model_data(model_data_uri, model_data_is_prefix),
        )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=model_role.role.role_arn,
            enable_network_isolation=isolated,
            primary_container=container,
        )
        # CreateModel checks that the role may read the model data.
        self.model.node.add_dependency(model_role.policy)
        if not isolated:
            checkov.skip(
                self.model,
                {
                    "CKV_AWS_370": "Serverless endpoints do not support network isolation; "
                    "instance-backed stages turn it on.",
                },
            )
        Validations.of(self.model).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SM1",
                reason=(
                    "Network isolation is on: the container has no network access, so a "
                    "VPC would add cost and nothing else."
                    if isolated
                    else "Serverless inference runs in SageMaker's managed network and "
                    "supports neither VPC configuration nor network isolation."
                ),
            )
        )

        config_kwargs: dict[str, Any] = {}
        if isinstance(serving, InstanceServing):
            variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=self.model.attr_model_name,
                initial_variant_weight=1.0,
                instance_type=serving.instance_type,
                initial_instance_count=serving.instance_count,
            )
            if not has_instance_store(serving.instance_type):
                self.volume_key = kms.Key(
                    self,
                    "VolumeKey",
                    description=f"Encrypts the ML storage volumes of endpoint {endpoint_name}",
                    enable_key_rotation=True,
                    pending_window=Duration.days(7),
                    removal_policy=RemovalPolicy.DESTROY,
                )
                config_kwargs["kms_key_id"] = self.volume_key.key_arn
        else:
            variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=self.model.attr_model_name,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=serving.memory_mb,
                    max_concurrency=serving.max_concurrency,
                ),
            )
        if data_capture_percent and data_capture_uri:
            config_kwargs["data_capture_config"] = sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=data_capture_percent,
                destination_s3_uri=data_capture_uri,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode) for mode in ("Input", "Output")
                ],
            )
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self, "Config", production_variants=[variant], **config_kwargs
        )
        if "kms_key_id" not in config_kwargs:
            Validations.of(self.endpoint_config).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SM2",
                    reason="Serverless endpoints have no ML storage volume to encrypt."
                    if isinstance(serving, ServerlessServing)
                    else "This instance type's storage is local NVMe instance store, "
                    "hardware-encrypted; SageMaker rejects a KmsKeyId for it.",
                )
            )
        endpoint_kwargs: dict[str, Any] = {}
        self.alarms = None
        if alarms:
            self.alarms = EndpointAlarms(
                self, "Alarms", endpoint_name=endpoint_name, names=alarm_names, settings=alarms
            )
        if deployment:
            # By name, as the execution role's DescribeAlarms grant names them.
            endpoint_kwargs["deployment_config"] = deployment_config(deployment, list(rollback_alarms))
        scaling = serving.autoscaling if isinstance(serving, InstanceServing) else None
        if scaling:
            # Keep the instance count autoscaling chose across updates; weights
            # and data capture still come from the new config.
            endpoint_kwargs["retain_all_variant_properties"] = True
            # DataCaptureConfig is "Not currently supported" here (rule
            # retained-variant-properties); data capture comes from the new config anyway.
            endpoint_kwargs["exclude_retained_variant_properties"] = [
                sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DesiredWeight")
            ]
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            **endpoint_kwargs,
        )
        if self.alarms:
            # The rollback alarms are named, not referenced: they must exist first.
            self.endpoint.node.add_dependency(self.alarms)
        if scaling:
            EndpointAutoscaling(
                self,
                "Autoscaling",
                endpoint=self.endpoint,
                endpoint_name=endpoint_name,
                settings=scaling,
            )


def _model_data(uri: str, is_prefix: bool) -> dict:
    if is_prefix:
        # An uncompressed SavedModel tree: no gzip on either side.
        return {
            "model_data_source": sagemaker.CfnModel.ModelDataSourceProperty(
                s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                    s3_uri=uri, s3_data_type="S3Prefix", compression_type="None"
                )
            )
        }
    return {"model_data_url": uri}


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
            CfnOutput(self, "TreeDigest", value=self.packaging.tree_digest)
            CfnOutput(self, "PackagingJobName", value=self.packaging.job_name)
        else:
            if config.pinned_artifact_key is None:  # the config gives every stage one or the other
                raise ValueError(f"stage {config.stage} neither packages nor pins an artifact")
            artifact_key = config.pinned_artifact_key
            is_prefix = artifact_key.endswith("/")
            if config.pinned_artifact_digest:
                CfnOutput(self, "TreeDigest", value=config.pinned_artifact_digest)
        artifact_uri = f"s3://{bucket.bucket_name}/{artifact_key}"
        image = serving_image(config.region, config.instance_type)
        model_role = ModelRole(
            self,
            "ModelRole",
            bucket=bucket,
            artifact_key=artifact_key,
            artifact_is_prefix=is_prefix,
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

        CfnOutput(self, "EndpointName", value=self.serving.endpoint.attr_endpoint_name)
        CfnOutput(self, "ArtifactLocation", value=artifact_uri)
        CfnOutput(
            self,
            "InvokeCommand",
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
