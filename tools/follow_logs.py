"""`make logs STAGE=...`: follow the stage's packaging job while a deploy waits on it.

CloudFormation shows nothing until the custom resource completes; the job's
own logs (CloudWatch Logs group /aws/sagemaker/TrainingJobs, one stream per
host named `<job>/algo-1-...`) say what it is doing.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

from botocore.exceptions import ClientError

from promotion.deployed import deployed_stage
from tools.cli import UserError, run

LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def latest_job(sagemaker, prefix: str) -> dict | None:
    jobs = sagemaker.list_training_jobs(
        NameContains=prefix, SortBy="CreationTime", SortOrder="Descending", MaxResults=10
    )["TrainingJobSummaries"]
    jobs = [job for job in jobs if job["TrainingJobName"].startswith(prefix)]
    return jobs[0] if jobs else None


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
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/", startTime=start
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


def require_stage_being_deployed(cloudformation, storage_stack: str, stage: str) -> None:
    """A deploy creates the storage stack first: without it there is no job to wait for."""
    try:
        cloudformation.describe_stacks(StackName=storage_stack)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationError":
            raise UserError(
                f"Stage {stage} is neither deployed nor being deployed in "
                f"{cloudformation.meta.region_name} (no stack {storage_stack}): start "
                f"`make deploy STAGE={stage}` first, then follow it with `make logs STAGE={stage}`."
            ) from error
        raise


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
    sagemaker, logs = stage.client("sagemaker"), stage.client("logs")
    require_stage_being_deployed(stage.client("cloudformation"), config.storage_stack_name, config.stage)
    job = latest_job(sagemaker, config.job_name_prefix)
    if job is None:
        print(f"Waiting for a packaging job named {config.job_name_prefix}-* in {config.region}", flush=True)
    while job is None:
        time.sleep(5)
        job = latest_job(sagemaker, config.job_name_prefix)
    print(f"Following {job['TrainingJobName']} ({job['TrainingJobStatus']})", flush=True)
    return 0 if follow(sagemaker, logs, job["TrainingJobName"]) == "Completed" else 1


if __name__ == "__main__":
    sys.exit(run(main))
