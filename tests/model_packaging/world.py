"""The packaging handler's events, properties and a Stubber-backed SageMaker, shared by its tests."""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile

from stacks.model_packaging.handler_asset.packaging_handler import handler
from stacks.model_packaging.job_contract import job_contract

REGION = "us-east-1"
# How the handler calls the job, as the construct hands it over.
CONTRACT = job_contract()


PROPS = {
    "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
    "JobNamePrefix": "tfhub-serving-dev-pkg",
    "RoleArn": "arn:aws:iam::123456789012:role/exec",
    "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.19.0-cpu-py312",
    "SourceUri": "s3://cdk-assets/abc.tar.gz",
    "SourceDigest": "abc",
    "HubHandle": "https://tfhub.dev/google/universal-sentence-encoder/4",
    "ModelName": "universal-sentence-encoder",
    "ModelVersion": "4",
    "Signature": "serving_default",
    "SampleInput": '["hello world"]',
    "VerifyLoad": "true",
    "ServingTfVersion": "2.20.0",
    "TrainUri": "s3://stage-bucket/trainingData/train/",
    "OutputUri": "s3://stage-bucket/artifacts/packaging/",
    "InstanceType": "ml.m5.xlarge",
    "VolumeSizeGb": "30",
    "MaxRuntimeSeconds": "2400",
    "SpotMaxWaitSeconds": "",
    "VolumeKmsKeyArn": "",
    "Tags": {"stage": "dev", "project": "tfhub-serving"},
    "CompressionType": "GZIP",
    "ServerlessMemoryMb": "3072",
}


NAME = handler.job_name(handler.parse_properties(PROPS))


# An instance-backed stage's job: the uncompressed prefix.
PREFIX_PROPS = {**PROPS, "CompressionType": "NONE", "ServerlessMemoryMb": ""}


PREFIX_NAME = handler.job_name(handler.parse_properties(PREFIX_PROPS))


def event(request, props=PROPS, physical_id=None, **extra):
    body = {"RequestType": request, "ResourceProperties": props, "RequestId": "r1", **extra}
    if physical_id:
        body["PhysicalResourceId"] = physical_id
    return body


def not_found(stub, name):
    stub.add_client_error(
        "describe_training_job",
        service_error_code="ValidationException",
        service_message="Requested resource not found.",
        expected_params={"TrainingJobName": name},
    )


def created(stub, name, props=PROPS):
    request = handler.training_job_request(name, handler.parse_properties(props), CONTRACT)
    stub.add_response("create_training_job", {"TrainingJobArn": f"arn:job/{name}"}, request)


def described(stub, name, status, minutes_ago=1, artifacts="model.tar.gz", **extra):
    """`artifacts`: how DescribeTrainingJob spells the output, `model.tar.gz` for GZIP,
    `model` (a prefix without its slash) for NONE."""
    stub.add_response(
        "describe_training_job",
        {
            "TrainingJobName": name,
            "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{name}",
            "TrainingJobStatus": status,
            "SecondaryStatus": "Training",
            "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://stage-bucket/artifacts/packaging/{name}/output/{artifacts}"},
            "ResourceConfig": {"InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {},
            "CreationTime": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago),
            **extra,
        },
        {"TrainingJobName": name},
    )


def model_archive(manifest: dict, before: int = 0) -> bytes:
    """A model.tar.gz as SageMaker packs /opt/ml/model: `before` bytes of model
    files, then manifest.json, names with a leading ./"""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (
            ("./use/4/saved_model.pb", b"x" * before),
            ("./manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
