"""`make logs STAGE=...`: follow the stage's packaging job while a deploy waits on it.

CloudFormation shows nothing until the custom resource completes; the job's
own logs (CloudWatch Logs group /aws/sagemaker/TrainingJobs, one stream per
host named `<job>/algo-1-...`) say what it is doing.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from typing import Callable

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ROOT = pathlib.Path(__file__).resolve().parent.parent


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)

    import boto3

    from stacks.config import load_from_cdk_json

    config = load_from_cdk_json(ROOT / "cdk.json", args.stage, boto3.session.Session().region_name)
    sagemaker = boto3.client("sagemaker", region_name=config.region)
    logs = boto3.client("logs", region_name=config.region)
    print(f"Waiting for a packaging job named {config.job_name_prefix}-* in {config.region}")
    while (job := latest_job(sagemaker, config.job_name_prefix)) is None:
        time.sleep(5)
    print(f"Following {job['TrainingJobName']} ({job['TrainingJobStatus']})")
    return 0 if follow(sagemaker, logs, job["TrainingJobName"]) == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
