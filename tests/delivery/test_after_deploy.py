"""What a promotion or rollback records once its deploy has started (moto, Stubber):
a smoke test that gets no answer from AWS is a failed verdict, recorded with the
assembly deployed."""

from __future__ import annotations

import datetime as dt
import re

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from delivery import assembly as stage_assembly
from delivery import records
from delivery.deployed import serving_outputs
from delivery.smoke import smoke
from stacks.stage.names import ServingOutputs, StageNames
from tests.delivery.world import NOW, REGION, keys, promote, repackage, rollback

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
