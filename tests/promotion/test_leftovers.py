"""`make destroy`'s last check: anything of the stage left in SageMaker (moto)."""

from __future__ import annotations

import boto3
from moto import mock_aws

from promotion.leftovers import leftovers

TAGS = [{"Key": "project", "Value": "tfhub-serving"}, {"Key": "stage", "Value": "dev"}]


@mock_aws
def test_resources_tagged_with_the_stage_are_reported_others_are_not():
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert leftovers(sm, "tfhub-serving", "dev") == []
    container = {"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"}
    sm.create_model(ModelName="m-dev", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer=container, Tags=TAGS)
    sm.create_model(ModelName="m-prod", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer=container, Tags=[{"Key": "project", "Value": "tfhub-serving"},
                                                      {"Key": "stage", "Value": "prod"}])
    sm.create_endpoint_config(
        EndpointConfigName="c-dev",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "m-dev",
                             "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        Tags=TAGS,
    )
    sm.create_endpoint(EndpointName="tfhub-serving-dev", EndpointConfigName="c-dev", Tags=TAGS)
    assert sorted(leftovers(sm, "tfhub-serving", "dev")) == [
        "Endpoint tfhub-serving-dev",
        "EndpointConfig c-dev",
        "Model m-dev",
    ]
    assert leftovers(sm, "tfhub-serving", "prod") == ["Model m-prod"]
