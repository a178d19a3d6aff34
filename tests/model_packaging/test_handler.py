"""The handler across a job's life: adopting, updating, deleting, retries, and what counts as no job."""

from __future__ import annotations

import pytest

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
    not_found,
)


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
    # Every shape has sent Signature: the stage settings always give one.
    minimal = {
        key: value
        for key, value in PROPS.items()
        if key
        not in {
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
    assert (props.sample_input, props.verify_load) == (None, True)
    request = handler.training_job_request("job", props, CONTRACT)
    assert "sample-input" not in request["HyperParameters"]
    assert request["Tags"] == []
    # Shape 1 always wrote an uncompressed prefix, and its jobs keep their names.
    assert request["OutputDataConfig"]["CompressionType"] == "NONE"
    assert (props.compression, props.serverless_memory_mb) == ("NONE", None)
    shape_1 = {k: v for k, v in PREFIX_PROPS.items() if k not in ("CompressionType", "ServerlessMemoryMb")}
    assert handler.job_name(handler.parse_properties(shape_1)) == PREFIX_NAME


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
