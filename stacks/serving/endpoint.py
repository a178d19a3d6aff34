"""The endpoint construct: a TF Serving Model, its EndpointConfig (instances or
serverless, volume key, data capture) and the Endpoint, with its alarms, blue/green
deployment policy and autoscaling."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.compliance import checkov
from stacks.rulebook.limits import has_instance_store
from stacks.serving.model_role import ModelRole
from stacks.serving.operations import VARIANT_NAME, EndpointAlarms, EndpointAutoscaling, deployment_config, endpoint_key
from stacks.stage.images import ContainerImage
from stacks.stage.schema import Alarms, Deployment, InstanceServing, ServerlessServing


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
                self.volume_key = endpoint_key(
                    self, "VolumeKey", f"Encrypts the ML storage volumes of endpoint {endpoint_name}"
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
        scaling = serving.autoscaling if isinstance(serving, InstanceServing) else None
        if deployment:
            largest = (
                (scaling.max_instances if scaling else serving.instance_count)
                if isinstance(serving, InstanceServing)
                else 1
            )
            # By name, as the execution role's DescribeAlarms grant names them.
            endpoint_kwargs["deployment_config"] = deployment_config(deployment, list(rollback_alarms), largest)
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
