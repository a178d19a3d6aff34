"""Idle teardown against moto (metrics, endpoint, stack) and Stubber (a busy stack)."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from stacks.cost_guard.handler.handler import decide
from stacks.serving.operations import VARIANT_NAME

REGION = "us-east-1"
ENDPOINT, STACK = "tfhub-serving-dev", "tfhub-serving-dev-serving"


@pytest.fixture
def aws():
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_model(
            ModelName="m",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
            PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName="c",
            ProductionVariants=[
                {
                    "VariantName": VARIANT_NAME,
                    "ModelName": "m",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="c")
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps({"Resources": {"H": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}),
        )
        yield boto3.client("cloudwatch", region_name=REGION), sagemaker, cloudformation


def invoked(cloudwatch, when, count=3):
    cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Value": count,
                "Timestamp": when,
                "Dimensions": [
                    {"Name": "EndpointName", "Value": ENDPOINT},
                    {"Name": "VariantName", "Value": VARIANT_NAME},
                ],
            }
        ],
    )


def stacks(cloudformation):
    return [
        s["StackName"] for s in cloudformation.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"
    ]


def test_an_idle_endpoint_is_taken_down_through_its_stack(aws):
    cloudwatch, sagemaker, cloudformation = aws
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=9)
    assert decide(cloudwatch, sagemaker, cloudformation, ENDPOINT, STACK, 8, later, variant=VARIANT_NAME) == "deleted"
    assert stacks(cloudformation) == []


def test_an_endpoint_in_use_stays(aws):
    cloudwatch, sagemaker, cloudformation = aws
    now = dt.datetime.now(dt.UTC)
    invoked(cloudwatch, now + dt.timedelta(hours=8))
    later = now + dt.timedelta(hours=9)
    assert decide(cloudwatch, sagemaker, cloudformation, ENDPOINT, STACK, 8, later, variant=VARIANT_NAME) == "in-use"
    assert stacks(cloudformation) == [STACK]


def test_a_freshly_deployed_endpoint_gets_its_full_window(aws):
    cloudwatch, sagemaker, cloudformation = aws
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert (
        decide(cloudwatch, sagemaker, cloudformation, ENDPOINT, STACK, 8, soon, variant=VARIANT_NAME)
        == "recently-changed"
    )
    assert stacks(cloudformation) == [STACK]


def test_no_endpoint_nothing_to_do(aws):
    cloudwatch, sagemaker, cloudformation = aws
    assert (
        decide(cloudwatch, sagemaker, cloudformation, "other", STACK, 8, dt.datetime.now(dt.UTC), variant=VARIANT_NAME)
        == "no-endpoint"
    )


def test_a_stack_being_deployed_is_left_alone():
    cloudformation = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    sagemaker = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    long_ago = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    with Stubber(sagemaker) as sm, Stubber(cloudwatch) as cw, Stubber(cloudformation) as cf:
        sm.add_response(
            "describe_endpoint",
            {
                "EndpointName": ENDPOINT,
                "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/x",
                "EndpointStatus": "InService",
                "CreationTime": long_ago,
                "LastModifiedTime": long_ago,
            },
        )
        cw.add_response("get_metric_statistics", {"Datapoints": []})
        cf.add_response(
            "describe_stacks",
            {"Stacks": [{"StackName": STACK, "CreationTime": long_ago, "StackStatus": "UPDATE_IN_PROGRESS"}]},
        )
        # No delete_stack is planned: the Stubber fails on any unplanned call.
        assert (
            decide(cloudwatch, sagemaker, cloudformation, ENDPOINT, STACK, 8, now, variant=VARIANT_NAME) == "stack-busy"
        )
