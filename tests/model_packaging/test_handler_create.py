"""The handler creating a job: the request it sends, waiting, failing, timing out, the result it reports."""

from __future__ import annotations

import json
from io import BytesIO

import boto3
import pytest
from botocore.response import StreamingBody
from moto import mock_aws

from stacks.model_packaging.handler_asset.packaging_handler import handler
from tests.model_packaging.world import (
    CONTRACT,
    NAME,
    PREFIX_NAME,
    PREFIX_PROPS,
    PROPS,
    REGION,
    created,
    described,
    event,
    model_archive,
    not_found,
)


@mock_aws
def test_create_sends_the_whole_training_job_request():
    handler._clients["sagemaker"] = boto3.client("sagemaker", region_name=REGION)
    result = handler.on_event(event("Create"))
    assert result == {"PhysicalResourceId": NAME}
    assert NAME.startswith("tfhub-serving-dev-pkg-") and len(NAME) == len("tfhub-serving-dev-pkg-") + 12

    job = handler._clients["sagemaker"].describe_training_job(TrainingJobName=NAME)
    assert job["AlgorithmSpecification"]["TrainingImage"] == PROPS["TrainingImage"]
    assert job["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert job["RoleArn"] == PROPS["RoleArn"]
    assert {k: json.loads(v) for k, v in job["HyperParameters"].items()} == {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": "s3://cdk-assets/abc.tar.gz",
        "hub-handle": "https://tfhub.dev/google/universal-sentence-encoder/4",
        "model-name": "universal-sentence-encoder",
        "model-version": 4,
        "signature": "serving_default",
        "verify-load": "true",
        "serving-tf-version": "2.20.0",
        "sample-input": '["hello world"]',
    }
    assert job["InputDataConfig"] == [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://stage-bucket/trainingData/train/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "ContentType": "text/csv",
        }
    ]
    assert job["OutputDataConfig"] == {
        "S3OutputPath": "s3://stage-bucket/artifacts/packaging/",
        "CompressionType": "GZIP",
    }
    assert job["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 2400}
    assert job["EnableManagedSpotTraining"] is False
    tags = handler._clients["sagemaker"].list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"stage": "dev", "project": "tfhub-serving"}


@mock_aws
def test_completed_job_returns_its_model_archive_and_tree_digest():
    s3 = boto3.client("s3", region_name=REGION)
    handler._clients.update(sagemaker=boto3.client("sagemaker", region_name=REGION), s3=s3)
    name = handler.on_event(event("Create"))["PhysicalResourceId"]
    s3.create_bucket(Bucket="stage-bucket")
    archive = f"artifacts/packaging/{name}/output/model.tar.gz"
    assert (
        handler._clients["sagemaker"].describe_training_job(TrainingJobName=name)["ModelArtifacts"]["S3ModelArtifacts"]
        == f"s3://stage-bucket/{archive}"
    )
    s3.put_object(
        Bucket="stage-bucket",
        Key=archive,
        Body=model_archive({"tree_digest": "d" * 64, "total_bytes": 1000}, before=1000),
    )
    result = handler.is_complete(event("Create", physical_id=name))
    assert result == {
        "IsComplete": True,
        "Data": {
            "ArtifactUri": f"s3://stage-bucket/{archive}",
            "ArtifactKey": archive,
            "TreeDigest": "d" * 64,
            "TrainingJobName": name,
        },
    }


def test_a_serverless_stage_refuses_a_model_its_memory_cannot_hold(stubbed):
    sm, s3 = stubbed["sagemaker"], stubbed["s3"]
    described(sm, NAME, "Completed")
    body = model_archive({"tree_digest": "d" * 64, "total_bytes": 1400 << 20})
    s3.add_response(
        "get_object",
        {"Body": StreamingBody(BytesIO(body), len(body))},
        {"Bucket": "stage-bucket", "Key": f"artifacts/packaging/{NAME}/output/model.tar.gz"},
    )
    with pytest.raises(
        RuntimeError,
        match=rf"Packaging job {NAME} completed, but the packaged model is 1400 MB "
        r"and a serverless endpoint must hold it twice over plus 512 MB for TF Serving \(3312 MB\), "
        r"but serving.serverless.memory_mb is 3072",
    ):
        handler.is_complete(event("Create", physical_id=NAME))


def test_spot_and_volume_key_reach_the_request():
    props = handler.parse_properties(
        {**PROPS, "SpotMaxWaitSeconds": "3000", "VolumeKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k"}
    )
    request = handler.training_job_request("job", props, CONTRACT)
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 2400, "MaxWaitTimeInSeconds": 3000}
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/k"
    # Neither shapes the artifact, so neither starts a new job.
    assert handler.job_name(props) == NAME


def test_create_ok_waits_then_completes_with_an_uncompressed_prefix(stubbed):
    sm, s3 = stubbed["sagemaker"], stubbed["s3"]
    not_found(sm, PREFIX_NAME)
    created(sm, PREFIX_NAME, PREFIX_PROPS)
    assert handler.on_event(event("Create", PREFIX_PROPS)) == {"PhysicalResourceId": PREFIX_NAME}
    described(sm, PREFIX_NAME, "InProgress", artifacts="model")
    assert handler.is_complete(event("Create", PREFIX_PROPS, physical_id=PREFIX_NAME)) == {"IsComplete": False}
    # CompressionType NONE: S3ModelArtifacts names the prefix without the slash hosting needs.
    described(sm, PREFIX_NAME, "Completed", artifacts="model")
    manifest = json.dumps({"tree_digest": "e" * 64, "total_bytes": 10}).encode()
    s3.add_response(
        "get_object",
        {"Body": StreamingBody(BytesIO(manifest), len(manifest))},
        {"Bucket": "stage-bucket", "Key": f"artifacts/packaging/{PREFIX_NAME}/output/model/manifest.json"},
    )
    data = handler.is_complete(event("Create", PREFIX_PROPS, physical_id=PREFIX_NAME))["Data"]
    assert data["ArtifactUri"] == f"s3://stage-bucket/artifacts/packaging/{PREFIX_NAME}/output/model/"
    assert data["TreeDigest"] == "e" * 64


def test_create_fail_raises_with_the_failure_reason(stubbed):
    described(stubbed["sagemaker"], NAME, "Failed", FailureReason="HTTP 404 Not Found from https://tfhub.dev/x")
    with pytest.raises(
        RuntimeError, match=rf"Packaging job {NAME} failed: HTTP 404 Not Found from https://tfhub.dev/x"
    ):
        handler.is_complete(event("Create", physical_id=NAME))


def test_create_timeout_stops_the_job_before_raising(stubbed, monkeypatch):
    monkeypatch.setenv("WAIT_LIMIT_SECONDS", "600")
    sm = stubbed["sagemaker"]
    described(sm, NAME, "InProgress", minutes_ago=11)
    described(sm, NAME, "InProgress", minutes_ago=11)
    sm.add_response("stop_training_job", {}, {"TrainingJobName": NAME})
    with pytest.raises(RuntimeError, match=r"did not finish within 600 seconds, so it was stopped"):
        handler.is_complete(event("Create", physical_id=NAME))


def test_the_hub_pin_and_the_archive_limits_reach_the_job():
    pinned = {
        **PROPS,
        "HubSha256": "a" * 64,
        "Limits": {"download_mb": "100", "model_mb": "200", "files": "300", "ratio": "40"},
    }
    request = handler.training_job_request("job", handler.parse_properties(pinned), CONTRACT)
    hyperparameters = {k: json.loads(v) for k, v in request["HyperParameters"].items()}
    assert hyperparameters["hub-sha256"] == "a" * 64
    assert {k: v for k, v in hyperparameters.items() if k.startswith("max-")} == {
        "max-download-mb": 100,
        "max-model-mb": 200,
        "max-files": 300,
        "max-ratio": 40,
    }
    # A pin decides which bytes are acceptable: a new one re-runs the job to check them.
    assert handler.job_name(handler.parse_properties(pinned)) != NAME
    # Shape 2 (neither key) keeps its jobs' names.
    assert handler.job_name(handler.parse_properties({**PROPS, "HubSha256": "", "Limits": {}})) == NAME


@mock_aws
def test_a_completed_job_without_a_manifest_fails_the_deploy_saying_so():
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="stage-bucket")
    handler._clients.update(sagemaker=boto3.client("sagemaker", region_name=REGION), s3=s3)
    name = handler.on_event(event("Create"))["PhysicalResourceId"]
    with pytest.raises(
        RuntimeError,
        match=r"completed but s3://stage-bucket/artifacts/packaging/.*/output/model.tar.gz "
        r"cannot be read \(NoSuchKey\)",
    ):
        handler.is_complete(event("Create", physical_id=name))
