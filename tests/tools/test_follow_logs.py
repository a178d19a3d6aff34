"""`make logs`: the job's log lines are printed until the job ends (moto + Stubber)."""

from __future__ import annotations

import time

import boto3
from botocore.stub import Stubber
from moto import mock_aws

from stacks.stage.names import TRAINING_LOG_GROUP
from tools.follow_logs import follow, latest_job

REGION = "us-east-1"


def create_job(sagemaker, name):
    sagemaker.create_training_job(
        TrainingJobName=name,
        RoleArn="arn:aws:iam::123456789012:role/exec",
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://b/artifacts/packaging/"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


@mock_aws
def test_latest_job_of_the_stage_is_found_by_prefix():
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    assert latest_job(sagemaker, "tfhub-serving-dev-pkg") is None
    create_job(sagemaker, "tfhub-serving-prod-pkg-aaaaaaaaaaaa")
    create_job(sagemaker, "tfhub-serving-dev-pkg-bbbbbbbbbbbb")
    assert latest_job(sagemaker, "tfhub-serving-dev-pkg")["TrainingJobName"] == "tfhub-serving-dev-pkg-bbbbbbbbbbbb"


@mock_aws
def test_follow_prints_the_jobs_log_lines_until_it_ends():
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName=TRAINING_LOG_GROUP)
    logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName="job-1/algo-1-1700000000")
    logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName="other/algo-1-1700000000")
    for stream, message in [
        ("job-1", "Fetching https://tfhub.dev/x"),
        ("other", "not ours"),
        ("job-1", "Packaged use/4"),
    ]:
        logs.put_log_events(
            logGroupName=TRAINING_LOG_GROUP,
            logStreamName=f"{stream}/algo-1-1700000000",
            logEvents=[{"timestamp": int(time.time() * 1000), "message": message}],
        )
    # moto's jobs complete at once; the Stubber plays InProgress, then Completed.
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    stub = Stubber(sagemaker)
    for status in ("InProgress", "Completed"):
        stub.add_response(
            "describe_training_job",
            {
                "TrainingJobName": "job-1",
                "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/job-1",
                "TrainingJobStatus": status,
                "SecondaryStatus": "Training",
                "AlgorithmSpecification": {"TrainingInputMode": "File"},
                "ModelArtifacts": {"S3ModelArtifacts": "s3://b/x/"},
                "ResourceConfig": {"InstanceCount": 1, "VolumeSizeInGB": 1},
                "StoppingCondition": {},
                "CreationTime": "2026-01-01T00:00:00Z",
            },
            {"TrainingJobName": "job-1"},
        )
    printed, sleeps = [], []
    with stub:
        status = follow(sagemaker, logs, "job-1", out=printed.append, sleep=sleeps.append)
    assert status == "Completed"
    # Each line once, though the second poll sees the same events again.
    assert printed == ["Fetching https://tfhub.dev/x", "Packaged use/4", "job-1: Completed"]
    assert sleeps == [5]


def stack_states(stub, *states):
    """describe_stacks answers for the storage and serving stacks, `(status, started)` each."""
    from botocore.stub import ANY

    for status, started in states:
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {"StackName": "s", "StackStatus": status, "CreationTime": started, "LastUpdatedTime": started}
                ]
            },
            {"StackName": ANY},
        )


def test_during_a_deploy_only_a_job_it_started_is_followed():
    import datetime as dt

    from botocore.stub import Stubber

    from stacks.stage.config import load_from_cdk_json
    from tests.conftest import ROOT
    from tools.follow_logs import wait_for_job

    config = load_from_cdk_json(ROOT / "cdk.json", "dev", {"AWS_REGION": REGION})
    started = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    old = {
        "TrainingJobName": f"{config.job_name_prefix}-old",
        "TrainingJobArn": "arn:job/old",
        "TrainingJobStatus": "Completed",
        "CreationTime": started - dt.timedelta(days=1),
    }
    new = {
        **old,
        "TrainingJobName": f"{config.job_name_prefix}-new",
        "TrainingJobStatus": "InProgress",
        "CreationTime": started + dt.timedelta(minutes=2),
    }
    cloudformation = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    sagemaker = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(cloudformation) as cf, Stubber(sagemaker) as sm:
        # The deploy is under way; the previous deploy's job is not it; then the new one appears.
        stack_states(cf, ("UPDATE_COMPLETE", started), ("UPDATE_IN_PROGRESS", started))
        sm.add_response("list_training_jobs", {"TrainingJobSummaries": [old]})
        stack_states(cf, ("UPDATE_COMPLETE", started), ("UPDATE_IN_PROGRESS", started))
        sm.add_response("list_training_jobs", {"TrainingJobSummaries": [new, old]})
        assert wait_for_job(sagemaker, cloudformation, ["a", "b"], config, sleep=lambda s: None) == new
        # A deploy that ends without a job: nothing to follow, and no waiting forever.
        stack_states(cf, ("UPDATE_COMPLETE", started), ("UPDATE_IN_PROGRESS", started))
        sm.add_response("list_training_jobs", {"TrainingJobSummaries": [old]})
        stack_states(cf, ("UPDATE_COMPLETE", started), ("UPDATE_COMPLETE", started))
        sm.add_response("list_training_jobs", {"TrainingJobSummaries": [old]})
        assert wait_for_job(sagemaker, cloudformation, ["a", "b"], config, sleep=lambda s: None) is None
        # No deploy under way: the latest job, a post-mortem.
        stack_states(cf, ("UPDATE_COMPLETE", started), ("UPDATE_COMPLETE", started))
        sm.add_response("list_training_jobs", {"TrainingJobSummaries": [old]})
        assert wait_for_job(sagemaker, cloudformation, ["a", "b"], config, sleep=lambda s: None) == old
