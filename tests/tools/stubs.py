"""Scripted AWS answers for the deploy watcher's tests (Stubber): a dev stage, its
stacks, its packaging job, the job's log lines and its endpoint, look by look."""

from __future__ import annotations

import datetime as dt

import boto3
from botocore.stub import ANY, Stubber

from delivery.deployed import DeployedStage
from stacks.stage.config import load_from_cdk_json
from tests.conftest import ROOT

STARTED = 1_800_000_000.0
NOW = dt.datetime.fromtimestamp(STARTED + 30, dt.UTC)
CONFIG = load_from_cdk_json(ROOT / "cdk.json", "dev", {"AWS_REGION": "us-east-1"})
JOB = f"{CONFIG.job_name_prefix}-0123456789ab"


def stubbed_stage() -> tuple[DeployedStage, Stubber, Stubber, Stubber]:
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stage = DeployedStage(CONFIG, session)
    sagemaker, logs, cloudformation = (
        session.client("sagemaker"),
        session.client("logs"),
        session.client("cloudformation"),
    )
    stage._clients.update(sagemaker=sagemaker, logs=logs, cloudformation=cloudformation)
    return stage, Stubber(sagemaker), Stubber(logs), Stubber(cloudformation)


STORAGE, SERVING = CONFIG.storage_stack_name, CONFIG.serving_stack_name


def stack_states(stub: Stubber, storage: str | None, serving: str | None, reason: str | None = None) -> None:
    """One look at both stacks (None: not created yet)."""
    for name, status in ((STORAGE, storage), (SERVING, serving)):
        if status is None:
            stub.add_client_error(
                "describe_stacks",
                "ValidationError",
                f"Stack with id {name} does not exist",
                expected_params={"StackName": name},
            )
            continue
        stack = {"StackName": name, "CreationTime": NOW, "StackStatus": status}
        stub.add_response(
            "describe_stacks",
            {"Stacks": [{**stack, **({"StackStatusReason": reason} if reason else {})}]},
            {"StackName": name},
        )


def job_state(stub: Stubber, status: str, secondary: str, reason: str | None = None) -> None:
    stub.add_response(
        "describe_training_job",
        {
            "TrainingJobName": JOB,
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:training-job/{JOB}",
            "TrainingJobStatus": status,
            "SecondaryStatus": secondary,
            "CreationTime": NOW,
            "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m"},
            "ResourceConfig": {"VolumeSizeInGB": 30},
            "StoppingCondition": {},
            **({"FailureReason": reason} if reason else {}),
        },
        {"TrainingJobName": JOB},
    )


def log_lines(stub: Stubber, *messages: str) -> None:
    stub.add_response(
        "filter_log_events",
        {
            "events": [
                {"logStreamName": f"{JOB}/algo-1", "eventId": message, "timestamp": 1, "message": message}
                for message in messages
            ]
        },
        {"logGroupName": ANY, "logStreamNamePrefix": f"{JOB}/", "startTime": ANY},
    )


def endpoint_state(stub: Stubber, status: str, reason: str | None = None) -> None:
    stub.add_response(
        "describe_endpoint",
        {
            "EndpointName": "tfhub-serving-dev",
            "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/x",
            "EndpointStatus": status,
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
            **({"FailureReason": reason} if reason else {}),
        },
        {"EndpointName": "tfhub-serving-dev"},
    )


def no_job(sagemaker: Stubber) -> None:
    sagemaker.add_response("list_training_jobs", {"TrainingJobSummaries": []})
