"""`make deploy`'s progress: a scripted sequence of stack, job and endpoint states
(Stubber) and the same against moto: what is news and what is not."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.stub import ANY
from moto import mock_aws

from delivery.deployed import DeployedStage
from stacks.stage.config import load_from_cdk_json
from stacks.stage.names import TRAINING_LOG_GROUP
from tests.conftest import ROOT
from tests.delivery.test_status import REGION, deploy
from tests.tools.stubs import (
    JOB,
    NOW,
    SERVING,
    STARTED,
    endpoint_state,
    job_state,
    log_lines,
    no_job,
    stack_states,
    stubbed_stage,
)
from tools.deploy_progress import Watcher


def test_job_lines_and_endpoint_states_as_they_change():
    stage, sagemaker, logs, cloudformation = stubbed_stage()
    lines: list[str] = []
    clock = iter([STARTED + s for s in (45, 45, 50, 61, 130, 130, 190, 190, 190)]).__next__
    watcher = Watcher(stage, STARTED, lines.append, clock=clock)
    # First look: storage as the last deploy left it (no news), serving being created,
    # the deploy's job downloading, no endpoint yet.
    stack_states(cloudformation, "CREATE_COMPLETE", "CREATE_IN_PROGRESS")
    sagemaker.add_response(
        "list_training_jobs",
        {
            "TrainingJobSummaries": [
                {
                    "TrainingJobName": JOB,
                    "TrainingJobArn": "arn",
                    "CreationTime": NOW,
                    "TrainingJobStatus": "InProgress",
                }
            ]
        },
        {"NameContains": ANY, "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 10},
    )
    job_state(sagemaker, "InProgress", "Downloading")
    # The job's own lines among the toolkit's and TensorFlow's: only its own are shown.
    log_lines(
        logs,
        'SM_HOSTS=["algo-1"]',
        "[packaging] Fetching https://hub/m/1",
        "W tensorflow/core/util/port.cc:113] oneDNN custom operations are on.",
        "[packaging] Received 12 MB",
    )
    sagemaker.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
    # Second look: the job completed (a line more); the endpoint is being created.
    stack_states(cloudformation, "CREATE_COMPLETE", "CREATE_IN_PROGRESS")
    job_state(sagemaker, "Completed", "Completed")
    log_lines(logs, "[packaging] Hashing files", "Reporting training SUCCESS")
    endpoint_state(sagemaker, "Creating")
    # Third look: nothing new but the endpoint in service and the stack complete.
    stack_states(cloudformation, "CREATE_COMPLETE", "CREATE_COMPLETE")
    job_state(sagemaker, "Completed", "Completed")
    log_lines(logs)
    endpoint_state(sagemaker, "InService")
    with sagemaker, logs, cloudformation:
        for _ in range(3):
            watcher.look()
    assert lines == [
        f"progress [00:45] stack {SERVING}: CREATE_IN_PROGRESS",
        f"progress [00:45] packaging job {JOB}: InProgress (Downloading)",
        "progress [00:50]   Fetching https://hub/m/1",
        "progress [01:01]   Received 12 MB",
        f"progress [02:10] packaging job {JOB}: Completed",
        "progress [02:10]   Hashing files",
        "progress [03:10] endpoint tfhub-serving-dev: Creating",
        f"progress [03:10] stack {SERVING}: CREATE_COMPLETE",
        "progress [03:10] endpoint tfhub-serving-dev: InService",
    ]


def test_a_rolled_back_stack_a_failed_job_and_a_failed_endpoint_say_why():
    stage, sagemaker, logs, cloudformation = stubbed_stage()
    lines: list[str] = []
    watcher = Watcher(stage, STARTED, lines.append, clock=lambda: STARTED + 5)
    watcher.job = JOB
    stack_states(
        cloudformation, None, "UPDATE_ROLLBACK_IN_PROGRESS", reason="The following resource(s) failed to update: [Job]"
    )
    job_state(sagemaker, "Failed", "Failed", reason="AlgorithmError: the hub answered 404")
    log_lines(logs)
    endpoint_state(sagemaker, "Failed", reason="The primary container did not pass the ping health check.")
    with sagemaker, logs, cloudformation:
        watcher.look()
    assert lines == [
        f"progress [00:05] stack {SERVING}: UPDATE_ROLLBACK_IN_PROGRESS: The following resource(s) failed to "
        "update: [Job]",
        f"progress [00:05] packaging job {JOB}: Failed: AlgorithmError: the hub answered 404",
        "progress [00:05] endpoint tfhub-serving-dev: Failed: The primary container did not pass the "
        "ping health check.",
    ]


@pytest.mark.parametrize(
    "states, shown",
    [
        # The last deploy's endpoint, in service, is not news; its update is.
        (("InService", "Updating", "InService"), ["Updating", "InService"]),
        # Created between two looks, it is news even when first seen in service.
        ((None, "InService"), ["InService"]),
    ],
    ids=["in service before the update", "created between looks"],
)
def test_an_endpoint_in_service_on_the_first_look_is_not_news(states, shown):
    stage, sagemaker, logs, cloudformation = stubbed_stage()
    lines: list[str] = []
    watcher = Watcher(stage, STARTED, lines.append, clock=lambda: STARTED + 5)
    for state in states:
        stack_states(cloudformation, "UPDATE_COMPLETE", "UPDATE_COMPLETE")
        no_job(sagemaker)
        if state is None:
            sagemaker.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
        else:
            endpoint_state(sagemaker, state)
    with sagemaker, logs, cloudformation:
        for _ in states:
            watcher.look()
    assert lines == [f"progress [00:05] endpoint tfhub-serving-dev: {state}" for state in shown]


def test_against_moto_the_new_job_and_its_own_lines_are_shown_the_last_deploys_endpoint_is_not():
    with mock_aws():
        config = load_from_cdk_json(ROOT / "cdk.json", "dev", {"AWS_REGION": REGION})
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        stage = DeployedStage(config, session)
        # What the last deploy left: both stacks and an endpoint in service.
        deploy(stage)
        started = time.time() - 1
        lines: list[str] = []
        watcher = Watcher(stage, started, lines.append, clock=lambda: started + 5)
        watcher.look()
        # The deploy's packaging job starts and writes its log.
        job = f"{config.job_name_prefix}-0123456789ab"
        stage.client("sagemaker").create_training_job(
            TrainingJobName=job,
            AlgorithmSpecification={"TrainingImage": "i", "TrainingInputMode": "File"},
            RoleArn="arn:aws:iam::123456789012:role/r",
            OutputDataConfig={"S3OutputPath": "s3://b/o"},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 1800},
        )
        logs = stage.client("logs")
        logs.create_log_group(logGroupName=TRAINING_LOG_GROUP)
        logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName=f"{job}/algo-1-1800000000")
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=TRAINING_LOG_GROUP,
            logStreamName=f"{job}/algo-1-1800000000",
            logEvents=[
                {"timestamp": now + i, "message": message}
                for i, message in enumerate(
                    ["Invoking user training script.", "[packaging] Packaged 2 files", "Reporting training SUCCESS"]
                )
            ],
        )
        watcher.look()
    assert lines == [
        f"progress [00:05] packaging job {job}: Completed",
        "progress [00:05]   Packaged 2 files",
    ]
