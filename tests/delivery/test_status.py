"""`make status` against moto: a stage never deployed, a deployed one with a promotion,
alarms and an endpoint, and a failed endpoint (Stubber), each stated in one screen;
a missing piece named as missing, and the JSON the same shape either way."""

from __future__ import annotations

import datetime as dt
import io
import json
from contextlib import redirect_stdout

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from delivery import records, status
from delivery.deployed import DeployedStage
from stacks.stage.config import load_from_cdk_json
from tests.conftest import ROOT
from tests.delivery.world import stack_with_outputs

REGION = "eu-west-1"


SERVING = "tfhub-serving-staging-serving"


def bare_report(**parts) -> dict:
    """A report with nothing in it but `parts`, for `status.render`."""
    empty: dict[str, object] = {
        "stacks": {SERVING: {"status": status.NOT_DEPLOYED}},
        "serving_stack": SERVING,
        "endpoint": None,
        "artifact": None,
        "digest": None,
        "served_files": None,
        "dashboard": None,
        "last_promotion": None,
        "alarms": {},
        "packages": False,
        "last_packaging_job": None,
        "errors": {},
    }
    return {"stage": "staging", "account": None, "region": REGION, **empty, **parts}


def test_a_stage_never_deployed_is_stated_not_a_traceback(staging):
    report = status.status(staging)
    assert all(stack["status"] == "NOT DEPLOYED" for stack in report["stacks"].values())
    assert report["endpoint"] is None and report["last_promotion"] is None and report["artifact"] is None
    text = status.render(report)
    assert "stack tfhub-serving-staging-serving: NOT DEPLOYED" in text
    assert "endpoint: none" in text and "last promotion: none" in text
    assert "dashboard: none (serving stack not deployed)" in text
    # staging has alarms: not there, each is named missing; it packages nothing.
    assert "alarm tfhub-serving-staging-5xx-errors: MISSING" in text and "packaging" not in text


def test_a_packaging_stage_never_deployed_says_no_job_yet_and_no_alarms():
    with mock_aws():
        config = load_from_cdk_json(ROOT / "cdk.json", "dev", {"AWS_REGION": REGION})
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        text = status.render(status.status(DeployedStage(config, session)))
    assert "  last packaging job: none yet" in text.splitlines()
    assert "  alarms: none configured" in text.splitlines()
    assert "  dashboard: none (serving stack not deployed)" in text.splitlines()


def test_a_serving_stack_without_the_dashboards_output_says_so():
    report = bare_report(stacks={SERVING: {"status": "UPDATE_COMPLETE"}})
    assert "dashboard: none (the serving stack has no DashboardUrl output: redeploy it" in status.render(report)


def test_the_json_has_the_same_keys_deployed_or_not(staging):
    def as_json() -> dict:
        out = io.StringIO()
        with redirect_stdout(out):
            status.print_report(status.status(staging), as_json=True)
        return json.loads(out.getvalue())

    never = as_json()
    deploy(staging)
    deployed = as_json()
    assert set(never) == set(deployed)
    assert never["dashboard"] is None and never["endpoint"] is None and never["last_promotion"] is None
    assert deployed["dashboard"] and deployed["endpoint"] and deployed["last_promotion"]


def deploy(stage: DeployedStage) -> None:
    """A stage as a promotion leaves it: stacks, bucket, a record, an endpoint on instances, alarms."""
    config = stage.config
    bucket, served = f"{config.stage}-bucket", "artifacts/promoted/abc/model/"
    s3, sagemaker, cloudwatch = stage.client("s3"), stage.client("sagemaker"), stage.client("cloudwatch")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": config.region})
    stack_with_outputs(
        stage.client("cloudformation"),
        config.storage_stack_name,
        {},
        {config.names.bucket_name_export: bucket},
    )
    stack_with_outputs(
        stage.client("cloudformation"),
        config.serving_stack_name,
        {
            "ArtifactLocation": f"s3://{bucket}/{served}",
            "TreeDigest": "a" * 64,
            "DashboardUrl": "https://console/dashboards:name=tfhub-serving-staging",
        },
    )
    # The served copy: its one model file and the manifest listing it.
    s3.put_object(Bucket=bucket, Key=f"{served}m/1/saved_model.pb", Body=b"pb")
    s3.put_object(
        Bucket=bucket, Key=f"{served}manifest.json", Body=json.dumps({"files": [{"path": "m/1/saved_model.pb"}]})
    )
    records.write(
        s3,
        bucket,
        {
            "source_stage": "dev",
            "digest": "a" * 64,
            "time": "2026-11-26T12:00:00+00:00",
            "commit": "c0ffee",
            "smoke": {"passed": True, "problems": []},
        },
    )
    sagemaker.create_model(
        ModelName="m",
        ExecutionRoleArn="arn:aws:iam::222222222222:role/r",
        PrimaryContainer={"Image": "i", "ModelDataUrl": "s3://b/m.tar.gz"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    sagemaker.create_endpoint(EndpointName=config.endpoint_name, EndpointConfigName="c")
    for name in config.alarm_names:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="Invocation5XXErrors",
            Namespace="AWS/SageMaker",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )


def test_a_deployed_stage_on_one_screen_and_as_json(staging):
    deploy(staging)
    report = status.status(staging)
    assert report["digest"] == "a" * 64 and report["artifact"].endswith("/artifacts/promoted/abc/model/")
    assert report["endpoint"]["variants"][0]["instance_type"] == "ml.m5.large"
    assert report["last_promotion"]["from"] == "dev" and report["last_promotion"]["smoke"] == "passed"
    assert set(report["alarms"]) == set(staging.config.alarm_names)
    assert "alarm tfhub-serving-staging-5xx-errors: " in status.render(report)
    text = status.render(report)
    assert "last promotion: from dev at 2026-11-26T12:00:00+00:00, commit c0ffee, smoke test passed" in text
    assert "dashboard: https://console/dashboards:name=tfhub-serving-staging" in text
    out = io.StringIO()
    with redirect_stdout(out):
        status.print_report(report, as_json=True)
    assert json.loads(out.getvalue())["digest"] == "a" * 64


def test_a_deploy_that_never_finished_is_named_so(staging):
    deploy(staging)
    s3 = staging.client("s3")
    records.started(s3, "staging-bucket", {"source_stage": "dev", "digest": "b" * 64, "time": "t", "commit": "beef"})
    promotion = status.status(staging)["last_promotion"]
    assert promotion["finished"] is False and promotion["digest"] == "b" * 64
    assert "commit beef, its deploy started; no outcome recorded" in status.render(status.status(staging))


def test_a_failed_endpoint_says_why(staging):
    sagemaker = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "tfhub-serving-staging",
                "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/x",
                "EndpointConfigName": "c",
                "EndpointStatus": "Failed",
                "FailureReason": "The primary container for production variant AllTraffic did not pass the "
                "ping health check.",
                "CreationTime": dt.datetime(2026, 11, 26),
                "LastModifiedTime": dt.datetime(2026, 11, 26),
                "ProductionVariants": [
                    {"VariantName": "AllTraffic", "CurrentInstanceCount": 0, "DesiredInstanceCount": 1}
                ],
            },
        )
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "c",
                "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/c",
                "CreationTime": dt.datetime(2026, 11, 26),
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": "m",
                        "InstanceType": "ml.m5.large",
                        "InitialInstanceCount": 1,
                    }
                ],
            },
        )
        point = status.endpoint(sagemaker, "tfhub-serving-staging")
    assert point["status"] == "Failed" and "ping health check" in point["failure"]
    report = bare_report(endpoint=point)
    text = status.render(report)
    assert "endpoint: Failed (The primary container" in text and "ml.m5.large, 0 of 1 instances" in text


# DescribeEndpoint of dev's serverless endpoint (moto has no serverless variants).
SERVERLESS_ENDPOINT = {
    "EndpointName": "tfhub-serving-dev",
    "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/tfhub-serving-dev",
    "EndpointConfigName": "c",
    "EndpointStatus": "InService",
    "CreationTime": dt.datetime(2026, 11, 26),
    "LastModifiedTime": dt.datetime(2026, 11, 26),
    "ProductionVariants": [
        {"VariantName": "AllTraffic", "CurrentServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 5}}
    ],
}


def test_a_serverless_variant_shows_its_settings():
    sagemaker = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sagemaker) as stub:
        stub.add_response("describe_endpoint", SERVERLESS_ENDPOINT)
        point = status.endpoint(sagemaker, "tfhub-serving-dev")
    assert point["variants"] == [{"name": "AllTraffic", "serverless": {"MemorySizeInMB": 3072, "MaxConcurrency": 5}}]
    text = status.render(bare_report(endpoint=point))
    assert "AllTraffic: serverless, 3072 MB" in text and "instances" not in text


def test_an_endpoint_it_may_not_describe_is_an_error_not_no_endpoint():
    sagemaker = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sagemaker) as stub:
        stub.add_client_error("describe_endpoint", "AccessDeniedException", "not authorized: DescribeEndpoint")
        with pytest.raises(ClientError, match="AccessDeniedException"):
            status.endpoint(sagemaker, "tfhub-serving-staging")


def test_a_rolled_back_stack_is_shown_with_cloudformations_reason(staging):
    cloudformation = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(cloudformation) as stub:
        for name, state, reason in (
            ("tfhub-serving-staging-storage", "UPDATE_COMPLETE", None),
            (
                "tfhub-serving-staging-serving",
                "UPDATE_ROLLBACK_COMPLETE",
                "The following resource(s) failed to update: [TfServingEndpointF7C3A7E8].",
            ),
        ):
            stub.add_response(
                "describe_stacks",
                {
                    "Stacks": [
                        {
                            "StackName": name,
                            "StackStatus": state,
                            "CreationTime": dt.datetime(2026, 11, 26),
                            **({"StackStatusReason": reason} if reason else {}),
                        }
                    ]
                },
                {"StackName": name},
            )
        found = status.stacks(cloudformation, staging.config)
    report = bare_report(stacks=found)
    assert (
        "stack tfhub-serving-staging-serving: UPDATE_ROLLBACK_COMPLETE: The following resource(s) failed to "
        "update: [TfServingEndpointF7C3A7E8]."
    ) in status.render(report)
