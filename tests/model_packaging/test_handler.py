"""The training-job custom resource handlers: requests against moto, state sequences with Stubber."""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
from io import BytesIO

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from stacks.model_packaging.handler import handler

REGION = "us-east-1"
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


@pytest.fixture(autouse=True)
def fresh_clients():
    handler._clients.clear()
    yield
    handler._clients.clear()


@pytest.fixture
def stubbed():
    """SageMaker and S3 clients with Stubbers, installed where the handler looks."""
    stubs = {}
    for service in ("sagemaker", "s3"):
        client = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        handler._clients[service] = client
        stubs[service] = Stubber(client)
        stubs[service].activate()
    yield stubs
    for stub in stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def not_found(stub, name):
    stub.add_client_error(
        "describe_training_job",
        service_error_code="ValidationException",
        service_message="Requested resource not found.",
        expected_params={"TrainingJobName": name},
    )


def created(stub, name, props=PROPS):
    request = handler.training_job_request(name, handler.parse_properties(props))
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


# --- requests, against moto -------------------------------------------------


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
    request = handler.training_job_request("job", props)
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 2400, "MaxWaitTimeInSeconds": 3000}
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/k"
    # Neither shapes the artifact, so neither starts a new job.
    assert handler.job_name(props) == NAME


# --- state sequences, with Stubber ------------------------------------------


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


@pytest.mark.parametrize("status", ["Stopping", "Deleting"])
def test_a_job_on_its_way_out_is_not_adopted(stubbed, status):
    sm = stubbed["sagemaker"]
    described(sm, NAME, status)
    not_found(sm, f"{NAME}-2")
    created(sm, f"{NAME}-2")
    assert handler.on_event(event("Create")) == {"PhysicalResourceId": f"{NAME}-2"}


@pytest.mark.parametrize(
    "props, artifacts, key",
    [
        (PROPS, "model.tar.gz", "output/model.tar.gz"),
        (PREFIX_PROPS, "model", "output/model/manifest.json"),
    ],
    ids=["archive", "prefix"],
)
def test_a_completed_job_whose_artifact_is_gone_is_not_adopted(stubbed, props, artifacts, key):
    sm, s3 = stubbed["sagemaker"], stubbed["s3"]
    name = handler.job_name(handler.parse_properties(props))
    # Where the artifact is comes from DescribeTrainingJob, however it spells it.
    described(sm, name, "Completed", artifacts=artifacts)
    s3.add_client_error(
        "head_object",
        service_error_code="404",
        http_status_code=404,
        expected_params={"Bucket": "stage-bucket", "Key": f"artifacts/packaging/{name}/{key}"},
    )
    not_found(sm, f"{name}-2")
    created(sm, f"{name}-2", props)
    assert handler.on_event(event("Create", props)) == {"PhysicalResourceId": f"{name}-2"}


def test_retried_create_adopts_the_running_job(stubbed):
    described(stubbed["sagemaker"], NAME, "InProgress")
    # No create_training_job is expected: the Stubber fails on any unplanned call.
    assert handler.on_event(event("Create")) == {"PhysicalResourceId": NAME}


def test_create_after_a_failed_job_of_that_name_takes_the_next_attempt(stubbed):
    sm = stubbed["sagemaker"]
    described(sm, NAME, "Failed")
    not_found(sm, f"{NAME}-2")
    created(sm, f"{NAME}-2")
    assert handler.on_event(event("Create")) == {"PhysicalResourceId": f"{NAME}-2"}


@pytest.mark.parametrize(
    "change",
    [
        {"MaxRuntimeSeconds": "1800"},
        {"Tags": {"stage": "dev", "owner": "ml"}},
        {"SpotMaxWaitSeconds": "2700"},
        {"Limits": {"files": "500", "ratio": "20"}},
    ],
)
def test_update_that_does_not_shape_the_artifact_starts_no_job(stubbed, change):
    result = handler.on_event(event("Update", {**PROPS, **change}, physical_id=NAME, OldResourceProperties=PROPS))
    assert result == {"PhysicalResourceId": NAME}


def test_update_keeps_a_retried_attempts_id(stubbed):
    result = handler.on_event(event("Update", PROPS, physical_id=f"{NAME}-2", OldResourceProperties=PROPS))
    assert result == {"PhysicalResourceId": f"{NAME}-2"}


def test_update_with_a_new_handle_starts_a_job_under_a_new_id(stubbed):
    new = {**PROPS, "HubHandle": "https://tfhub.dev/google/universal-sentence-encoder-large/5"}
    new_name = handler.job_name(handler.parse_properties(new))
    assert new_name != NAME
    sm = stubbed["sagemaker"]
    not_found(sm, new_name)
    created(sm, new_name, new)
    result = handler.on_event(event("Update", new, physical_id=NAME, OldResourceProperties=PROPS))
    assert result == {"PhysicalResourceId": new_name}


def test_delete_stops_a_job_in_progress(stubbed):
    sm = stubbed["sagemaker"]
    described(sm, NAME, "InProgress")
    sm.add_response("stop_training_job", {}, {"TrainingJobName": NAME})
    assert handler.on_event(event("Delete", physical_id=NAME)) == {"PhysicalResourceId": NAME}
    assert handler.is_complete(event("Delete", physical_id=NAME)) == {"IsComplete": True}


@pytest.mark.parametrize("status", ["Failed", "Completed", "Stopped", "Stopping"])
def test_delete_of_a_finished_job_leaves_it_and_its_artifacts(stubbed, status):
    described(stubbed["sagemaker"], NAME, status)
    assert handler.on_event(event("Delete", physical_id=NAME)) == {"PhysicalResourceId": NAME}


def test_delete_after_a_create_that_never_started_a_job(stubbed):
    # After a failed Create, CloudFormation may send Delete with an id no job has.
    not_found(stubbed["sagemaker"], "r1")
    assert handler.on_event(event("Delete", physical_id="r1")) == {"PhysicalResourceId": "r1"}


def test_old_property_shape_without_optional_keys_is_handled():
    minimal = {
        key: value
        for key, value in PROPS.items()
        if key
        not in {
            "Signature",
            "SampleInput",
            "VerifyLoad",
            "ServingTfVersion",
            "SpotMaxWaitSeconds",
            "VolumeKmsKeyArn",
            "Tags",
            "CompressionType",
            "ServerlessMemoryMb",
        }
    }
    props = handler.parse_properties(minimal)
    assert (props.signature, props.sample_input, props.verify_load) == ("serving_default", None, True)
    request = handler.training_job_request("job", props)
    assert "sample-input" not in request["HyperParameters"]
    assert request["Tags"] == []
    # Shape 1 always wrote an uncompressed prefix, and its jobs keep their names.
    assert request["OutputDataConfig"]["CompressionType"] == "NONE"
    assert (props.compression, props.serverless_memory_mb) == ("NONE", None)
    shape_1 = {k: v for k, v in PREFIX_PROPS.items() if k not in ("CompressionType", "ServerlessMemoryMb")}
    assert handler.job_name(handler.parse_properties(shape_1)) == PREFIX_NAME


def test_the_hub_pin_and_the_archive_limits_reach_the_job():
    pinned = {
        **PROPS,
        "HubSha256": "a" * 64,
        "Limits": {"download_mb": "100", "model_mb": "200", "files": "300", "ratio": "40"},
    }
    request = handler.training_job_request("job", handler.parse_properties(pinned))
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


def test_an_s3_error_that_is_not_not_found_never_starts_a_second_job(stubbed):
    from botocore.exceptions import ClientError

    sm, s3 = stubbed["sagemaker"], stubbed["s3"]
    described(sm, NAME, "Completed")
    s3.add_client_error("head_object", service_error_code="SlowDown", http_status_code=503)
    # No create_training_job is planned: the Stubber fails the test on one.
    with pytest.raises(ClientError, match="SlowDown"):
        handler.on_event(event("Create"))


def test_the_handlers_clients_retry_throttles_and_server_errors(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    retries = handler.client("sagemaker").meta.config.retries
    assert retries["mode"] == "standard" and retries["total_max_attempts"] >= 10


def test_only_not_found_means_no_job(stubbed):
    from botocore.exceptions import ClientError

    stubbed["sagemaker"].add_client_error(
        "describe_training_job",
        service_error_code="ValidationException",
        service_message="1 validation error detected: TrainingJobName too long",
    )
    with pytest.raises(ClientError):
        handler.on_event(event("Create"))
