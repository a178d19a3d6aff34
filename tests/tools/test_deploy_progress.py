"""`make deploy`'s progress: a scripted sequence of stack, job and endpoint states
(Stubber) and the same against moto, the deploy's own output and exit code passed
through whatever the outcome, watching that ends with the deploy, a watcher that
fails aside."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from delivery.deployed import DeployedStage
from stacks.stage.config import load_from_cdk_json
from tests.conftest import ROOT
from tests.delivery.test_status import REGION, deploy
from tools.deploy_progress import Watcher, run_deploy, watch
from tools.follow_logs import LOG_GROUP

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


def no_job(sagemaker: Stubber) -> None:
    sagemaker.add_response("list_training_jobs", {"TrainingJobSummaries": []})


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
        logs.create_log_group(logGroupName=LOG_GROUP)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=f"{job}/algo-1-1800000000")
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=LOG_GROUP,
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


def test_the_deploys_output_and_exit_code_pass_through(capfd):
    code = run_deploy([sys.executable, "-c", "print('cdk says hello'); raise SystemExit(3)"], watcher=None)
    assert code == 3 and "cdk says hello" in capfd.readouterr().out


def test_watching_ends_with_a_failed_deploy_after_one_last_look(capfd):
    stage, sagemaker, logs, cloudformation = stubbed_stage()
    lines: list[str] = []
    watcher = Watcher(stage, STARTED, lines.append, clock=lambda: STARTED + 70)
    no_job_no_endpoint = (
        lambda: sagemaker.add_response("list_training_jobs", {"TrainingJobSummaries": []}),
        lambda: sagemaker.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint"),
    )
    # A look while the update runs, then the one last look once the deploy has ended.
    stack_states(cloudformation, "CREATE_COMPLETE", "UPDATE_IN_PROGRESS")
    for add in no_job_no_endpoint:
        add()
    stack_states(cloudformation, "CREATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", reason="rolled back")
    for add in no_job_no_endpoint:
        add()
    with sagemaker, logs, cloudformation:
        watcher.look()
        code = run_deploy(
            [sys.executable, "-c", "print('cdk: deploy failed'); raise SystemExit(1)"], watcher, poll_seconds=3600
        )
        # Every scripted answer was asked for: the watcher looked once more, then stopped.
        cloudformation.assert_no_pending_responses()
        sagemaker.assert_no_pending_responses()
    assert code == 1 and "cdk: deploy failed" in capfd.readouterr().out
    assert lines[-1] == f"progress [01:10] stack {SERVING}: UPDATE_ROLLBACK_COMPLETE: rolled back"


def test_a_watcher_that_cannot_watch_steps_aside_and_the_deploy_goes_on():
    stage, sagemaker, _, cloudformation = stubbed_stage()
    lines: list[str] = []
    watcher = Watcher(stage, STARTED, lines.append)
    watcher.job = JOB
    stack_states(cloudformation, "CREATE_COMPLETE", "UPDATE_IN_PROGRESS")
    sagemaker.add_client_error("describe_training_job", "AccessDeniedException", "not authorized")
    done = threading.Event()
    done.set()
    with sagemaker, cloudformation:
        watch(watcher, done, poll_seconds=0)
    lines = [line for line in lines if " stack " not in line]
    assert len(lines) == 1 and lines[0].startswith("progress: no longer shown (") and "the deploy goes on" in lines[0]


def test_a_watcher_that_could_never_watch_says_not_shown():
    stage, _, _, cloudformation = stubbed_stage()
    lines: list[str] = []
    watcher = Watcher(stage, STARTED, lines.append)
    cloudformation.add_client_error("describe_stacks", "AccessDenied", "not authorized: DescribeStacks")
    done = threading.Event()
    done.set()
    with cloudformation:
        watch(watcher, done, poll_seconds=0)
    assert len(lines) == 1 and lines[0].startswith("progress: not shown (") and "DescribeStacks" in lines[0]


def test_an_endpoint_it_may_not_describe_is_no_longer_shown_not_taken_for_absent():
    stage, sagemaker, _, cloudformation = stubbed_stage()
    lines: list[str] = []
    watcher = Watcher(stage, STARTED, lines.append)
    stack_states(cloudformation, "CREATE_COMPLETE", "UPDATE_IN_PROGRESS")
    sagemaker.add_response("list_training_jobs", {"TrainingJobSummaries": []})
    sagemaker.add_client_error("describe_endpoint", "AccessDeniedException", "not authorized: DescribeEndpoint")
    done = threading.Event()
    done.set()
    with sagemaker, cloudformation:
        watch(watcher, done, poll_seconds=0)
    assert lines[-1].startswith("progress: no longer shown (") and "DescribeEndpoint" in lines[-1]


def test_an_unknown_stage_stops_in_one_line_before_any_deploy(tmp_path):
    import subprocess

    marker = tmp_path / "deployed"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.deploy_progress",
            "--stage",
            "qa",
            "--",
            sys.executable,
            "-c",
            f"open({str(marker)!r}, 'w').close()",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and not marker.exists()
    assert result.stderr.strip() == "Configuration error: stage: 'qa' is not declared; allowed: dev, prod, staging"
