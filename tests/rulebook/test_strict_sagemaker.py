"""The rehearsal's SageMaker is strict where moto is lenient: a request SageMaker would
refuse is refused before moto sees it, naming the rule; one it takes goes through."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from rehearsal.sagemaker import SageMaker
from tests.conftest import moto_server

ROLE = "arn:aws:iam::000000000000:role/execution"
KEYS = {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}


@pytest.fixture
def sagemaker(tmp_path):
    with moto_server() as moto_url:

        def clients(service, url):
            return boto3.client(service, endpoint_url=url, **KEYS)

        # moto's S3 and CloudWatch Logs stand in for ministack's here.
        with SageMaker(moto_url, clients, tmp_path, {"AWS_ENDPOINT_URL": moto_url}) as strict:
            s3 = clients("s3", moto_url)
            s3.create_bucket(Bucket="models")
            yield clients("sagemaker", strict.url), clients("sagemaker", moto_url), s3, strict


def model(client, name, container):
    client.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "i", **container})


PREFIX = {
    "ModelDataSource": {
        "S3DataSource": {"S3Uri": "s3://models/m/", "S3DataType": "S3Prefix", "CompressionType": "None"}
    }
}


def refused(call, rule: str):
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert f"SageMaker rule {rule}" in caught.value.response["Error"]["Message"]


def test_a_serverless_config_for_a_prefix_model_is_refused_before_moto(sagemaker):
    client, moto, _, strict = sagemaker
    model(client, "prefix", PREFIX)
    refused(
        lambda: client.create_endpoint_config(
            EndpointConfigName="bad",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "prefix",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                }
            ],
        ),
        "serverless-model-data",
    )
    assert moto.list_endpoint_configs()["EndpointConfigs"] == []
    assert strict.checked["CreateEndpointConfig"] == 1


def test_network_isolation_moto_forgets_is_still_known(sagemaker):
    client, moto, _, _ = sagemaker
    client.create_model(
        ModelName="isolated",
        ExecutionRoleArn=ROLE,
        EnableNetworkIsolation=True,
        PrimaryContainer={"Image": "i", "ModelDataUrl": "s3://models/model.tar.gz"},
    )
    assert moto.describe_model(ModelName="isolated")["EnableNetworkIsolation"] is False  # moto drops it
    refused(
        lambda: client.create_endpoint_config(
            EndpointConfigName="bad",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "isolated",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                }
            ],
        ),
        "serverless-features",
    )


def test_a_folder_object_under_a_prefix_is_refused(sagemaker):
    client, _, s3, _ = sagemaker
    s3.put_object(Bucket="models", Key="m/use/4/saved_model.pb", Body=b"pb")
    s3.put_object(Bucket="models", Key="m/use/4/assets/", Body=b"")
    refused(lambda: model(client, "foldered", PREFIX), "model-data-no-folder-objects")


def test_an_endpoint_turns_from_serverless_to_instances_and_never_back(sagemaker):
    client, moto, _, _ = sagemaker
    model(client, "m", {"ModelDataUrl": "s3://models/model.tar.gz"})
    client.create_endpoint_config(
        EndpointConfigName="serverless",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m",
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
            }
        ],
    )
    client.create_endpoint_config(
        EndpointConfigName="instances",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    client.create_endpoint(EndpointName="e", EndpointConfigName="serverless")
    client.update_endpoint(EndpointName="e", EndpointConfigName="instances")
    assert moto.describe_endpoint(EndpointName="e")["EndpointConfigName"] == "instances"
    refused(
        lambda: client.update_endpoint(EndpointName="e", EndpointConfigName="serverless"), "instances-to-serverless"
    )
    assert moto.describe_endpoint(EndpointName="e")["EndpointConfigName"] == "instances"


def test_what_sagemaker_takes_goes_through_to_moto(sagemaker):
    client, moto, s3, _ = sagemaker
    s3.put_object(Bucket="models", Key="m/use/4/saved_model.pb", Body=b"pb")
    model(client, "a", PREFIX)
    model(client, "b", PREFIX)
    for name, kind in (("one", "a"), ("two", "b")):
        client.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": kind,
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 2,
                }
            ],
        )
    client.create_endpoint(EndpointName="e", EndpointConfigName="one")
    client.update_endpoint(
        EndpointName="e",
        EndpointConfigName="two",
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "WaitIntervalInSeconds": 60,
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                }
            }
        },
    )
    assert moto.describe_endpoint(EndpointName="e")["EndpointConfigName"] == "two"
