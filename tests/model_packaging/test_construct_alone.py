"""PackagingJob on its own, in a bare stack: only its narrow props decide what it sends."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from packaging_job.packager.archive import Limits
from stacks.model_packaging.construct import PackagingJob
from stacks.stage.schema import ModelConfig, PackagingConfig

# Each test synthesizes a bare stack (the helper below).
pytestmark = pytest.mark.synth

SETTINGS = PackagingConfig(
    instance_type="ml.m5.xlarge",
    volume_gb=30,
    max_runtime_minutes=20,
    spot_max_wait_minutes=None,
    volume_kms_key_arn=None,
    signature="serving_default",
    sample_input=["hi"],
    verify_load=True,
    limits=Limits(download_mb=100),
)
MODEL = ModelConfig(name="text", version=3, hub_handle="https://hub.example/m/3", hub_sha256=None)


def packaging_template(serverless_memory_mb: int | None) -> Template:
    stack = cdk.Stack(cdk.App(), "Bare", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    PackagingJob(
        stack,
        "Job",
        settings=SETTINGS,
        model=MODEL,
        region="eu-west-1",
        job_name_prefix="bare-1234abcd-pkg",
        compression="GZIP" if serverless_memory_mb else "NONE",
        serverless_memory_mb=serverless_memory_mb,
        tags=(("team", "ml"),),
        bucket=s3.Bucket(stack, "Bucket"),
        role=iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
    )
    return Template.from_stack(stack)


def test_the_job_takes_exactly_its_props():
    template = packaging_template(serverless_memory_mb=3072)
    template.has_resource_properties(
        "Custom::TfHubPackagingJob",
        {
            "JobNamePrefix": "bare-1234abcd-pkg",
            "HubHandle": "https://hub.example/m/3",
            "ModelName": "text",
            "ModelVersion": 3,
            "InstanceType": "ml.m5.xlarge",
            "MaxRuntimeSeconds": 1200,
            "CompressionType": "GZIP",
            "ServerlessMemoryMb": 3072,
            "Tags": {"team": "ml"},
            "Limits": Match.object_like({"download_mb": 100}),
            "TrainingImage": Match.string_like_regexp(r"\.dkr\.ecr\.eu-west-1\.amazonaws\.com/tensorflow-training:"),
        },
    )
    # 20 minutes of job and 15 of overhead: the Provider waits 35, CloudFormation 40.
    (resource,) = template.find_resources("Custom::TfHubPackagingJob").values()
    assert resource["Properties"]["ServiceTimeout"] == str(40 * 60)


def test_instances_get_the_uncompressed_prefix_and_no_memory_bound():
    template = packaging_template(serverless_memory_mb=None)
    template.has_resource_properties("Custom::TfHubPackagingJob", {"CompressionType": "NONE", "ServerlessMemoryMb": ""})
