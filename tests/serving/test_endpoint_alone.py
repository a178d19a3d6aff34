"""TfServingEndpoint on its own, in a bare stack: its narrow props decide the endpoint."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from stacks.serving.endpoint import TfServingEndpoint
from stacks.serving.model_role import ModelRole
from stacks.stage.images import serving_image
from stacks.stage.schema import Alarms, Deployment, InstanceServing, ModelConfig, ServerlessServing

# Each test synthesizes a bare stack (the helper below).
pytestmark = pytest.mark.synth

ENV = cdk.Environment(account="111111111111", region="eu-west-1")


def endpoint_template(serving, **production) -> Template:
    stack = cdk.Stack(cdk.App(), "Bare", env=ENV)
    instance_type = serving.instance_type if isinstance(serving, InstanceServing) else None
    image = serving_image("eu-west-1", instance_type)
    archive = isinstance(serving, ServerlessServing)
    key = "artifacts/m/model.tar.gz" if archive else "artifacts/m/model/"
    bucket = s3.Bucket(stack, "Bucket")
    role = ModelRole(
        stack,
        "Role",
        endpoint_name="bare",
        bucket=bucket,
        artifact_key=key,
        artifact_is_prefix=not archive,
        model=ModelConfig("text", 1, "https://example.com/m.tar.gz"),
        image=image,
    )
    TfServingEndpoint(
        stack,
        "Endpoint",
        endpoint_name="bare",
        model_name="text",
        serving=serving,
        image=image,
        model_role=role,
        model_data_uri=f"s3://b/{key}",
        model_data_is_prefix=not archive,
        **production,
    )
    return Template.from_stack(stack)


def test_a_serverless_endpoint_serves_its_archive_with_its_memory():
    template = endpoint_template(ServerlessServing(memory_mb=3072, max_concurrency=4))
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "EnableNetworkIsolation": False,
            "PrimaryContainer": Match.object_like(
                {
                    "ModelDataUrl": "s3://b/artifacts/m/model.tar.gz",
                    "Environment": {"SAGEMAKER_TFS_DEFAULT_MODEL_NAME": "text"},
                }
            ),
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like({"ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 4}})
            ]
        },
    )
    template.resource_count_is("AWS::CloudWatch::Alarm", 0)


def test_instances_with_a_deployment_roll_back_on_the_alarms_they_are_given():
    serving = InstanceServing(instance_type="ml.m5.large", instance_count=2, autoscaling=None)
    alarms = Alarms(emails=(), max_model_latency_ms=500, max_5xx_errors=1)
    template = endpoint_template(
        serving,
        alarms=alarms,
        alarm_names=("bare-5xx", "bare-latency"),
        deployment=Deployment(strategy="canary", step_instances=1, wait_minutes=5),
        rollback_alarms=("bare-5xx", "bare-latency"),
    )
    template.has_resource_properties("AWS::SageMaker::Model", {"EnableNetworkIsolation": True})
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": "bare",
            "DeploymentConfig": {
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "bare-5xx"}, {"AlarmName": "bare-latency"}]},
                "BlueGreenUpdatePolicy": Match.object_like(
                    {
                        "TrafficRoutingConfiguration": Match.object_like(
                            {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}
                        )
                    }
                ),
            },
        },
    )
    assert sorted(a["Properties"]["AlarmName"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()) == [
        "bare-5xx",
        "bare-latency",
    ]
