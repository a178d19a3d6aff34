"""`make logs STAGE=...`: follow the stage's packaging job while a deploy waits on it.

CloudFormation shows nothing until the custom resource completes; the job's
own logs (CloudWatch Logs group /aws/sagemaker/TrainingJobs, one stream per
host named `<job>/algo-1-...`) say what it is doing. While a deploy of the
stage is under way, only a job that deploy started counts: it waits for one,
and says so when the deploy ends without one. With no deploy under way it
shows the latest job's log, a post-mortem.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from delivery.deployed import deployed_stage
from stacks.stage.names import TRAINING_LOG_GROUP
from tools.cli import UserError, run


def latest_job(sagemaker, prefix: str, since=None) -> dict | None:
    """The stage's newest packaging job, created after `since` if given."""
    jobs = sagemaker.list_training_jobs(
        NameContains=prefix, SortBy="CreationTime", SortOrder="Descending", MaxResults=10
    )["TrainingJobSummaries"]
    jobs = [
        job
        for job in jobs
        if job["TrainingJobName"].startswith(f"{prefix}-") and (since is None or job["CreationTime"] >= since)
    ]
    return jobs[0] if jobs else None


def deploy_started(cloudformation, stacks: list[str], stage: str):
    """When the deploy under way on the stage's stacks began; None when none is.

    A deploy creates the storage stack first: with neither stack there, there
    is nothing to follow.
    """
    started, found = [], False
    for stack in stacks:
        try:
            (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ValidationError":
                continue
            raise
        found = True
        if description["StackStatus"].endswith("_IN_PROGRESS"):
            started.append(description.get("LastUpdatedTime") or description["CreationTime"])
    if not found:
        raise UserError(
            f"Stage {stage} is neither deployed nor being deployed in {cloudformation.meta.region_name} "
            f"(no stack {stacks[0]}): start `make deploy STAGE={stage}` first, then follow it with "
            f"`make logs STAGE={stage}`."
        )
    return min(started) if started else None


def follow(
    sagemaker,
    logs,
    job_name: str,
    out: Callable[[str], None] = print,
    poll_seconds: float = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Print the job's log events until it ends; return its final status."""
    seen: set[str] = set()
    start = 0
    while True:
        status = sagemaker.describe_training_job(TrainingJobName=job_name)["TrainingJobStatus"]
        try:
            pages = logs.get_paginator("filter_log_events").paginate(
                logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{job_name}/", startTime=start
            )
            for page in pages:
                for event in page["events"]:
                    # Checked here too: not every implementation honours the prefix.
                    ours = event["logStreamName"].startswith(f"{job_name}/")
                    if ours and event["eventId"] not in seen:
                        seen.add(event["eventId"])
                        start = max(start, event["timestamp"])
                        out(event["message"].rstrip())
        except logs.exceptions.ResourceNotFoundException:
            pass  # the log group appears when the first job writes
        if status not in ("InProgress", "Stopping"):
            out(f"{job_name}: {status}")
            return status
        sleep(poll_seconds)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    stage = deployed_stage(args.stage)
    config = stage.config
    if not config.packaging:
        raise UserError(
            f"Stage {config.stage} serves a pinned artifact and runs no packaging job; "
            "`make logs` follows a stage that packages on deploy (dev)."
        )
    sagemaker, logs, cloudformation = stage.client("sagemaker"), stage.client("logs"), stage.client("cloudformation")
    stacks = [config.storage_stack_name, config.serving_stack_name]
    job = wait_for_job(sagemaker, cloudformation, stacks, config)
    if job is None:
        print(
            f"The deploy of stage {config.stage} ended without starting a packaging job "
            "(nothing that shapes the artifact changed)."
        )
        return 0
    print(f"Following {job['TrainingJobName']} ({job['TrainingJobStatus']})", flush=True)
    return 0 if follow(sagemaker, logs, job["TrainingJobName"]) == "Completed" else 1


def wait_for_job(sagemaker, cloudformation, stacks: list[str], config, sleep=time.sleep) -> dict | None:
    """The job to follow: one the deploy under way started (waiting for it), or
    with no deploy under way the latest job; None when a deploy ends without one."""
    since = deploy_started(cloudformation, stacks, config.stage)
    if since is None:
        job = latest_job(sagemaker, config.job_name_prefix)
        if job is None:
            raise UserError(f"Stage {config.stage} has run no packaging job in {config.region} yet.")
        return job
    print(f"Waiting for the deploy's packaging job ({config.job_name_prefix}-*) in {config.region}", flush=True)
    while (job := latest_job(sagemaker, config.job_name_prefix, since)) is None:
        if deploy_started(cloudformation, stacks, config.stage) is None:
            return latest_job(sagemaker, config.job_name_prefix, since)
        sleep(5)
    return job


if __name__ == "__main__":
    sys.exit(run(main))
