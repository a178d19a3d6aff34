"""`make status` when one section cannot be read: a deleted endpoint config, AccessDenied
on DescribeAlarms, a promotion record that is not JSON, a packaging job lookup refused.
That section is one line saying what and why (null plus `errors` in the JSON), every
other section still shows, and the exit code is 0. Moto, and Stubber for the refusals
moto cannot produce."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from delivery import status
from delivery.deployed import DeployedStage
from delivery.status_screen import SECTIONS
from stacks.stage.config import load_from_cdk_json
from tests.conftest import ROOT
from tests.delivery.test_status import REGION, SERVERLESS_ENDPOINT, deploy
from tools.cli import run

STAGING_ALARMS = ("tfhub-serving-staging-5xx-errors", "tfhub-serving-staging-model-latency")


def printed(stage: DeployedStage, monkeypatch) -> tuple[str, dict]:
    """The screen and the JSON of `python -m delivery.status --stage ...`, each exiting 0."""
    monkeypatch.setattr(status, "deployed_stage", lambda name: stage)
    outputs = []
    for extra in ([], ["--json"]):
        out = io.StringIO()
        with redirect_stdout(out):
            assert run(status.main, ["--stage", stage.config.stage, *extra]) == 0
        outputs.append(out.getvalue())
    return outputs[0], json.loads(outputs[1])


def assert_only_failed(screen: str, report: dict, key: str, because: str, intact: tuple[str, ...]) -> None:
    """`key` is the one line naming `because`, and null in the JSON; the sections in `intact` show."""
    lines = screen.splitlines()
    (failed,) = [line for line in lines if line.startswith(f"  {SECTIONS[key]}: ")]
    assert failed.startswith(f"  {SECTIONS[key]}: could not be read: ") and because in failed
    assert report[key] is None and set(report["errors"]) == {key} and because in report["errors"][key]
    expected = {
        "endpoint": lambda: (
            "    AllTraffic: ml.m5.large, 1 of 1 instances" in lines and report["endpoint"]["status"] == "InService"
        ),
        "last_promotion": lambda: (
            ("  last promotion: from dev at 2026-11-26T12:00:00+00:00, commit c0ffee, smoke test passed" in lines)
            and report["last_promotion"]["commit"] == "c0ffee"
        ),
        "alarms": lambda: (
            set(report["alarms"]) == set(STAGING_ALARMS)
            and all(
                f"  alarm {name}: {state}" in lines and state != "MISSING" for name, state in report["alarms"].items()
            )
        ),
    }
    for other in intact:
        assert expected[other](), f"{other} is not intact:\n{screen}\n{json.dumps(report, indent=1)}"
    assert f"  serves: s3://{report['stage']}-bucket/artifacts/promoted/abc/model/" in lines
    assert "  digest: " + "a" * 64 in lines and report["digest"] == "a" * 64
    assert report["dashboard"] and f"  dashboard: {report['dashboard']}" in lines


def test_a_deleted_endpoint_config_is_the_endpoints_line_alone(staging, monkeypatch):
    deploy(staging)
    staging.client("sagemaker").delete_endpoint_config(EndpointConfigName="c")
    screen, report = printed(staging, monkeypatch)
    because = "AWS DescribeEndpointConfig failed (ValidationException: Could not find endpoint configuration"
    assert_only_failed(screen, report, "endpoint", because, ("last_promotion", "alarms"))


def test_alarms_it_may_not_describe_are_the_alarms_line_alone(staging, monkeypatch):
    deploy(staging)
    with Stubber(staging.client("cloudwatch")) as stub:
        for _ in ("screen", "json"):
            stub.add_client_error(
                "describe_alarms",
                "AccessDenied",
                "User: arn:aws:iam::222222222222:user/ci is not authorized to perform: cloudwatch:DescribeAlarms",
                http_status_code=403,
            )
        screen, report = printed(staging, monkeypatch)
        stub.assert_no_pending_responses()
    because = "AWS refused DescribeAlarms (AccessDenied: User: arn:aws:iam::222222222222:user/ci is not authorized"
    assert_only_failed(screen, report, "alarms", because, ("endpoint", "last_promotion"))


def test_a_promotion_record_that_is_not_json_is_the_promotions_line_alone(staging, monkeypatch):
    deploy(staging)
    key = "promotions/99999999-2026-11-27T00:00:00-garbled.json"
    staging.client("s3").put_object(Bucket="staging-bucket", Key=key, Body=b"{not json")
    screen, report = printed(staging, monkeypatch)
    because = f"s3://staging-bucket/{key} is not a promotion record this tool wrote: refusing it."
    assert_only_failed(screen, report, "last_promotion", because, ("endpoint", "alarms"))


@pytest.fixture
def dev():
    """dev of the real cdk.json (it packages, serves serverless, has no alarms) deployed in moto."""
    with mock_aws():
        config = load_from_cdk_json(ROOT / "cdk.json", "dev", {"AWS_REGION": REGION})
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        stage = DeployedStage(config, session)
        deploy(stage)
        yield stage


def test_a_packaging_job_it_may_not_list_is_the_jobs_line_alone(dev, monkeypatch):
    # One SageMaker client answers both the endpoint and the job lookups: the stub answers both.
    with Stubber(dev.client("sagemaker")) as stub:
        for _ in ("screen", "json"):
            stub.add_response("describe_endpoint", SERVERLESS_ENDPOINT)
            stub.add_client_error(
                "list_training_jobs",
                "AccessDeniedException",
                "User: arn:aws:iam::111111111111:user/ci is not authorized to perform: sagemaker:ListTrainingJobs",
                http_status_code=400,
            )
        screen, report = printed(dev, monkeypatch)
        stub.assert_no_pending_responses()
    because = "AWS refused ListTrainingJobs (AccessDeniedException: User: arn:aws:iam::111111111111:user/ci"
    assert_only_failed(screen, report, "last_packaging_job", because, ("last_promotion",))
    lines = screen.splitlines()
    assert "  endpoint: InService, since 2026-11-26 00:00:00" in lines
    assert "    AllTraffic: serverless, 3072 MB, up to 5 concurrent" in lines
    assert report["endpoint"]["variants"][0]["serverless"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 5}
    assert "  alarms: none configured" in lines and report["alarms"] == {}
