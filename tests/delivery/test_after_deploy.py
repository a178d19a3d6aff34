"""What a promotion or rollback records and says once its deploy has started (moto,
Stubber): a smoke test that gets no answer from AWS is a failed verdict, recorded with
the assembly deployed; a deploy that fails says where its start is logged, how to see
the stage's state, and what to run next."""

from __future__ import annotations

import datetime as dt
import re
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from delivery import assembly as stage_assembly
from delivery import records
from delivery.deployed import serving_outputs
from delivery.smoke import smoke
from stacks.stage.names import ServingOutputs, StageNames
from tests.delivery.world import NOW, REGION, keys, promote, repackage, rollback
from tools.cli import UserError

URL = f"https://runtime.sagemaker.{REGION}.amazonaws.com/endpoints/tfhub-serving-staging/invocations"


def unanswered(error: Exception):
    """A smoke test whose endpoint call fails in botocore with `error` (its retries spent)."""

    def smoke_stage(stage: str) -> dict:
        runtime = boto3.client(
            "sagemaker-runtime", region_name=REGION, config=Config(retries={"total_max_attempts": 1})
        )

        def fail(**_):
            raise error

        runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", fail)
        manifest = {"signature": "s", "signatures": {"s": {"outputs": {}}}, "sample_input": ["hi"]}
        return smoke(runtime, f"tfhub-serving-{stage}", manifest, sleep=lambda _: None)

    return smoke_stage


def throttled(stage: str) -> dict:
    """A smoke test whose first call, reading the stage's outputs, CloudFormation throttles."""
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    with Stubber(cloudformation) as stubber:
        stubber.add_client_error("describe_stacks", "Throttling", "Rate exceeded", http_status_code=400)
        serving_outputs(cloudformation, StageNames("tfhub-serving", stage), ServingOutputs.ENDPOINT_NAME)
    raise AssertionError("the stubbed call answered")


NO_ANSWER = [
    (unanswered(EndpointConnectionError(endpoint_url=URL)), rf'Cannot reach AWS \(.*"{URL}"\): check the network'),
    (unanswered(ReadTimeoutError(endpoint_url=URL)), rf'Cannot reach AWS \(Read timeout on endpoint URL: "{URL}"\)'),
    (throttled, r"AWS DescribeStacks failed \(Throttling: Rate exceeded\)\."),
]


def deploys_assembly(tmp_path):
    """A deploy that returns the assembly it deployed."""
    (tmp_path / "assembly").mkdir()
    (tmp_path / "assembly" / "manifest.json").write_text("{}")
    return lambda *a: tmp_path / "assembly"


@pytest.mark.parametrize(("smoke_stage", "problem"), NO_ANSWER, ids=["unreachable", "read timeout", "throttled"])
def test_a_smoke_test_without_an_answer_is_a_failed_verdict_recorded_with_the_assembly(
    stages, tmp_path, smoke_stage, problem
):
    dev, staging, _ = stages
    record = promote(dev, staging, deploys_assembly(tmp_path), "one", lambda: NOW, smoke=smoke_stage)
    assert record["smoke"]["passed"] is False
    (line,) = record["smoke"]["problems"]
    assert re.fullmatch(problem + ".*", line) and "\n" not in line
    # Recorded like any failed smoke test: the newest record, its assembly stored.
    assert records.newest(staging.s3, "staging-bucket") == record["record"]
    assert record["assembly"]["key"] in keys(staging.s3, "staging-bucket", stage_assembly.STORED)
    # A rollback's smoke test, likewise.
    repackage(dev, "other")
    second = promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1))
    back = rollback(staging, second["record"], lambda *a: None, "back", lambda: NOW, smoke=smoke_stage)
    assert back["smoke"]["passed"] is False and re.fullmatch(problem + ".*", back["smoke"]["problems"][0])


ASSEMBLY = stage_assembly.ROOT / "cdk.out" / "promote-staging"


@pytest.fixture
def failing_cdk(monkeypatch):
    """A deploy whose `cdk deploy` exits 1, as `assembly.deploy` runs it."""
    monkeypatch.setattr(stage_assembly.subprocess, "run", lambda command, **_: subprocess.CompletedProcess(command, 1))
    return lambda stage, key, digest, assembly: stage_assembly.deploy(ASSEMBLY)


def test_a_failed_deploy_says_its_start_is_logged_and_what_to_run(stages, failing_cdk):
    dev, staging, _ = stages
    with pytest.raises(UserError) as raised:
        promote(dev, staging, failing_cdk, "one", lambda: NOW)
    started = records.newest(staging.s3, "staging-bucket")
    assert str(raised.value) == (
        f"The deploy of {ASSEMBLY} failed (cdk exit code 1, its output is above). Its start is logged in "
        f"{started}; make status STAGE=staging shows what the stage serves now. Fix the cause, then run the same "
        "promotion again, or return to the last verified state: make promote TO=staging RECORD=last-verified"
    )
    assert records.require(staging.s3, "staging-bucket", started)["deploy"] == records.STARTED


def test_a_failed_rollback_deploy_names_the_rollback_to_run_again(stages, failing_cdk):
    dev, staging, _ = stages
    promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    repackage(dev, "other")
    promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1))
    with pytest.raises(UserError) as raised:
        rollback(staging, "previous", failing_cdk, "back", lambda: NOW + dt.timedelta(hours=2))
    started = records.newest(staging.s3, "staging-bucket")
    assert str(raised.value).endswith(
        f"Its start is logged in {started}; make status STAGE=staging shows what the stage serves now. "
        "Fix the cause, then run the rollback again: make promote TO=staging RECORD=previous"
    )
    assert "same promotion" not in str(raised.value)


def test_an_outcome_aws_refuses_to_record_still_names_the_logged_start(stages, monkeypatch):
    """The deploy happened; only writing its outcome failed (AccessDenied on PutObject):
    the line says so, as for a failed deploy, never a bare AWS refusal."""
    dev, staging, _ = stages
    write = records.write

    def refused(s3, bucket, record):
        if "started" not in record:  # the start record goes through; the outcome names its start
            return write(s3, bucket, record)
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "PutObject")

    monkeypatch.setattr(records, "write", refused)
    with pytest.raises(UserError) as raised:
        promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    started = records.newest(staging.s3, "staging-bucket")
    assert records.require(staging.s3, "staging-bucket", started)["deploy"] == records.STARTED
    assert str(raised.value).startswith("AWS refused PutObject (AccessDenied: denied)")
    assert f"Its start is logged in {started}; make status STAGE=staging shows what the stage serves now." in str(
        raised.value
    )
    assert "\n" not in str(raised.value)
