"""`make status`'s last packaging job: how long the deploy waited for it, why it
failed, how long one in progress has been running (Stubber)."""

from __future__ import annotations

import datetime as dt

import boto3
from botocore.stub import Stubber

from delivery import status
from tests.delivery.test_status import REGION, bare_report

CREATED = dt.datetime(2026, 11, 26, 11, 58, tzinfo=dt.UTC)


def newest_job(prefix: str, now: dt.datetime | None = None, **described) -> dict | None:
    """status.last_packaging_job over one job, DescribeTrainingJob answering `described`."""
    sagemaker = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    job = {"TrainingJobName": f"{prefix}-abc", "TrainingJobArn": "arn", "CreationTime": CREATED}
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "list_training_jobs",
            {"TrainingJobSummaries": [{**job, "TrainingJobStatus": described["TrainingJobStatus"]}]},
        )
        stub.add_response(
            "describe_training_job",
            {
                **job,
                "AlgorithmSpecification": {"TrainingInputMode": "File"},
                "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m"},
                "ResourceConfig": {"VolumeSizeInGB": 30},
                "StoppingCondition": {},
                **described,
            },
        )
        return status.last_packaging_job(sagemaker, prefix, now=now)


def test_a_failed_packaging_job_says_how_long_the_deploy_waited_and_why(staging):
    prefix = staging.config.job_name_prefix
    job = newest_job(
        prefix,
        TrainingJobStatus="Failed",
        SecondaryStatus="Failed",
        # Two minutes of provisioning before training started: the deploy waited them too.
        TrainingStartTime=dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC),
        TrainingEndTime=dt.datetime(2026, 11, 26, 12, 3, tzinfo=dt.UTC),
        FailureReason="AlgorithmError: the hub answered 404",
    )
    assert job == {
        "name": f"{prefix}-abc",
        "status": "Failed",
        "seconds": 300,
        "failure": "AlgorithmError: the hub answered 404",
    }
    text = status.render(bare_report(packages=True, last_packaging_job=job))
    assert f"last packaging job: {prefix}-abc: Failed, took 300 s (AlgorithmError: the hub answered 404)" in text


def test_a_packaging_job_in_progress_says_how_long_it_has_been_running(staging):
    prefix = staging.config.job_name_prefix
    job = newest_job(
        prefix, now=CREATED + dt.timedelta(seconds=95), TrainingJobStatus="InProgress", SecondaryStatus="Downloading"
    )
    assert job is not None and job["seconds"] == 95
    text = status.render(bare_report(packages=True, last_packaging_job=job))
    assert f"last packaging job: {prefix}-abc: InProgress, running for 95 s" in text
