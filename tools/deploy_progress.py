"""`make deploy`: the CDK CLI's deploy, and beside it what CloudFormation waits on.

While the deploy runs, each stack's status as it changes (a rollback with
CloudFormation's reason), the packaging job's status changes and its own log
lines (bytes received, hashing, verification; not the toolkit's or TensorFlow's)
and the endpoint's status as it is created or updated are printed with the time
elapsed, prefixed `progress`. The CLI's own output goes straight to the terminal
and its exit code is make's: the watcher only adds lines, stops when the deploy
ends whatever the outcome, and a failure to watch (no permission to describe the
job, say) is one line, never the deploy's failure. Credentials that cannot be
resolved stop it in one line before the CLI runs (tools/credentials.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from delivery import preflight
from delivery.deployed import DeployedStage
from delivery.status import NOT_DEPLOYED, described_endpoint, stacks
from packaging_job.packager import progress
from stacks.stage.names import TRAINING_LOG_GROUP
from tools.cli import UserError, run
from tools.credentials import checked_stage
from tools.follow_logs import latest_job

POLL_SECONDS = 10.0


class Watcher:
    """What changed since the last look: the stage's stacks, the deploy's packaging job
    and the endpoint."""

    def __init__(self, stage: DeployedStage, started: float, out: Callable[[str], None], clock=time.time) -> None:
        self.stage, self.started, self.out, self.clock = stage, started, out, clock
        self.job: str | None = None
        self.job_status: str | None = None
        self.endpoint_status: str | None = None
        self.stack_status: dict[str, str] = {}
        self.log_from = 0
        self.seen: set[str] = set()
        self.said_anything = False

    def say(self, text: str) -> None:
        self.said_anything = True
        elapsed = int(self.clock() - self.started)
        self.out(f"progress [{elapsed // 60:02d}:{elapsed % 60:02d}] {text}")

    def look(self) -> None:
        config = self.stage.config
        self.look_at_stacks()
        if config.packaging:
            self.look_at_job(config.job_name_prefix)
        self.look_at_endpoint(config.endpoint_name)

    def look_at_stacks(self) -> None:
        for name, stack in stacks(self.stage.client("cloudformation"), self.stage.config).items():
            status, before = stack["status"], self.stack_status.get(name)
            self.stack_status[name] = status
            # The first look may still see the last deploy's outcome: only a change,
            # or an operation under way, is news.
            first_and_settled = before is None and not status.endswith("_IN_PROGRESS")
            if status == NOT_DEPLOYED or status == before or first_and_settled:
                continue
            failing = "ROLLBACK" in status or "FAILED" in status
            reason = f": {stack['reason']}" if failing and stack.get("reason") else ""
            self.say(f"stack {name}: {status}{reason}")

    def look_at_job(self, prefix: str) -> None:
        sagemaker = self.stage.client("sagemaker")
        since = _as_datetime(self.started)
        job = latest_job(sagemaker, prefix, since) if self.job is None else {"TrainingJobName": self.job}
        if job is None:
            return
        self.job = job["TrainingJobName"]
        described = sagemaker.describe_training_job(TrainingJobName=self.job)
        status = described["TrainingJobStatus"]
        secondary = described.get("SecondaryStatus")
        shown = f"{status} ({secondary})" if secondary and secondary != status else status
        if status in ("Failed", "Stopped") and described.get("FailureReason"):
            shown += f": {described['FailureReason']}"
        if shown != self.job_status:
            self.job_status = shown
            self.say(f"packaging job {self.job}: {shown}")
        for line in self.new_log_lines():
            self.say(f"  {line}")

    def new_log_lines(self) -> list[str]:
        logs = self.stage.client("logs")
        lines = []
        try:
            pages = logs.get_paginator("filter_log_events").paginate(
                logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{self.job}/", startTime=self.log_from
            )
            for page in pages:
                for event in page["events"]:
                    if event["logStreamName"].startswith(f"{self.job}/") and event["eventId"] not in self.seen:
                        self.seen.add(event["eventId"])
                        self.log_from = max(self.log_from, event["timestamp"])
                        # The job's own lines only: the toolkit's environment dump and
                        # TensorFlow's warnings say nothing about the deploy's progress.
                        message = progress.message(event["message"])
                        if message is not None:
                            lines.append(message)
        except logs.exceptions.ResourceNotFoundException:
            pass  # the log group appears when the first job writes
        return lines

    def look_at_endpoint(self, name: str) -> None:
        described = described_endpoint(self.stage.client("sagemaker"), name)
        status = described["EndpointStatus"] if described else NOT_DEPLOYED
        before, self.endpoint_status = self.endpoint_status, status
        # As for the stacks: on the first look an endpoint in service is the last
        # deploy's; one being created, updated or rolled back, or a failed one, is news.
        if status in (NOT_DEPLOYED, before) or (before is None and status == "InService"):
            return
        failure = f": {described['FailureReason']}" if described and described.get("FailureReason") else ""
        self.say(f"endpoint {name}: {status}{failure}")


def _as_datetime(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def watch(watcher: Watcher, done: threading.Event, poll_seconds: float = POLL_SECONDS) -> None:
    """Look every `poll_seconds` until `done`, and once more at the end."""
    try:
        while not done.wait(poll_seconds):
            watcher.look()
        watcher.look()
    except (ClientError, BotoCoreError, UserError) as error:
        shown = "no longer shown" if watcher.said_anything else "not shown"
        watcher.out(f"progress: {shown} ({error}); the deploy goes on")


def run_deploy(command: list[str], watcher: Watcher | None, poll_seconds: float = POLL_SECONDS) -> int:
    """Run the deploy command, watching beside it; its exit code is the deploy's."""
    done = threading.Event()
    thread = threading.Thread(target=watch, args=(watcher, done, poll_seconds), daemon=True) if watcher else None
    process = subprocess.Popen(command)
    if thread:
        thread.start()
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.wait()
        raise
    finally:
        done.set()
        if thread:
            thread.join(timeout=60)
    # Killed by a signal (Popen says -N): the code a shell gives it, 128 + N.
    return 128 - code if code < 0 else code


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument(
        "--assembly", type=pathlib.Path, help="the synthesized assembly the command deploys, checked first"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the deploy command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    stage = checked_stage(args.stage)
    if args.assembly:
        preflight.check(stage, args.assembly)
    watcher = Watcher(stage, time.time(), lambda line: print(line, flush=True))
    return run_deploy(command, watcher)


if __name__ == "__main__":
    # A stage that is not in cdk.json, or credentials that cannot be resolved, stop
    # here in one line before any deploy.
    sys.exit(run(main))
