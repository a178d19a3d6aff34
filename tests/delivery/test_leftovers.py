"""`make destroy`'s last check: anything of the stage left in SageMaker (moto)."""

from __future__ import annotations

import boto3
from moto import mock_aws

from delivery.leftovers import leftovers

TAGS = [{"Key": "project", "Value": "tfhub-serving"}, {"Key": "stage", "Value": "dev"}]


@mock_aws
def test_resources_tagged_with_the_stage_are_reported_others_are_not():
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert leftovers(sm, "tfhub-serving", "dev") == []
    container = {"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"}
    sm.create_model(
        ModelName="m-dev", ExecutionRoleArn="arn:aws:iam::123456789012:role/r", PrimaryContainer=container, Tags=TAGS
    )
    sm.create_model(
        ModelName="m-prod",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer=container,
        Tags=[{"Key": "project", "Value": "tfhub-serving"}, {"Key": "stage", "Value": "prod"}],
    )
    sm.create_endpoint_config(
        EndpointConfigName="c-dev",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m-dev",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        Tags=TAGS,
    )
    sm.create_endpoint(EndpointName="tfhub-serving-dev", EndpointConfigName="c-dev", Tags=TAGS)
    assert sorted(leftovers(sm, "tfhub-serving", "dev")) == [
        "Endpoint tfhub-serving-dev",
        "EndpointConfig c-dev",
        "Model m-dev",
    ]
    assert leftovers(sm, "tfhub-serving", "prod") == ["Model m-prod"]


def test_a_stopping_job_still_bills_and_a_vanished_resource_is_gone():
    from botocore.stub import Stubber

    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(sm)
    for key in ("Endpoints", "EndpointConfigs"):
        stub.add_response(f"list_{'endpoints' if key == 'Endpoints' else 'endpoint_configs'}", {key: []})
    stub.add_response(
        "list_models",
        {
            "Models": [
                {
                    "ModelName": "deleted-meanwhile",
                    "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/d",
                    "CreationTime": "2026-11-26T00:00:00Z",
                }
            ]
        },
    )
    stub.add_client_error(
        "list_tags",
        service_error_code="ValidationException",
        expected_params={"ResourceArn": "arn:aws:sagemaker:us-east-1:1:model/d"},
    )
    job = {
        "TrainingJobName": "tfhub-serving-dev-pkg-1",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/j",
        "CreationTime": "2026-11-26T00:00:00Z",
        "TrainingJobStatus": "Stopping",
    }
    stub.add_response("list_training_jobs", {"TrainingJobSummaries": []}, {"StatusEquals": "InProgress"})
    stub.add_response("list_training_jobs", {"TrainingJobSummaries": [job]}, {"StatusEquals": "Stopping"})
    stub.add_response("list_tags", {"Tags": TAGS}, {"ResourceArn": job["TrainingJobArn"]})
    with stub:
        assert leftovers(sm, "tfhub-serving", "dev") == ["TrainingJob tfhub-serving-dev-pkg-1"]
