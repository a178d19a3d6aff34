"""Training jobs the rehearsal's SageMaker really runs: /opt/ml laid out from the
request, the channels downloaded, the SageMaker training toolkit running the
job's own `train.py`, its lines sent to CloudWatch Logs, the model uploaded in
the requested form, and the failure file as FailureReason."""

from __future__ import annotations

import io
import os
import pathlib
import shutil
import signal
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from stacks.stage.names import TRAINING_LOG_GROUP
from tools.toolkit import start_toolkit, write_opt_ml

_FAILURE_MAX = 1024  # SageMaker's FailureReason is at most 1024 characters


@dataclass
class Run:
    """A training job the stand-in runs."""

    name: str
    status: str = "InProgress"
    secondary: str = "Starting"
    failure: str | None = None
    artifacts: str | None = None
    ended: float | None = None
    process: Any = None
    stop_requested: bool = False
    lines: list[str] = field(default_factory=list)


class TrainingJobs:
    """Runs a job on a thread; the SageMaker stand-in mixes it in."""

    s3: Any
    logs: Any
    workdir: pathlib.Path
    job_env: dict[str, str]

    @staticmethod
    def _as_sagemaker_reports(job: dict, run: Run) -> dict:
        job["TrainingJobStatus"], job["SecondaryStatus"] = run.status, run.secondary
        if run.failure:
            job["FailureReason"] = run.failure
        else:
            job.pop("FailureReason", None)
        if run.artifacts:
            job["ModelArtifacts"] = {"S3ModelArtifacts": run.artifacts}
        else:
            job.pop("ModelArtifacts", None)
        if run.ended:
            job["TrainingEndTime"] = run.ended
        else:
            job.pop("TrainingEndTime", None)
        return job

    def _run_job(self, run: Run, request: dict) -> None:
        base = self.workdir / "training-jobs" / run.name
        shutil.rmtree(base, ignore_errors=True)
        try:
            channels = {
                channel["ChannelName"]: {
                    "ContentType": channel.get("ContentType", ""),
                    "TrainingInputMode": request["AlgorithmSpecification"].get("TrainingInputMode", "File"),
                }
                for channel in request.get("InputDataConfig", [])
            }
            write_opt_ml(base, request.get("HyperParameters", {}), channels)
            run.secondary = "Downloading"
            for channel in request.get("InputDataConfig", []):
                self._download_channel(channel, base / "input" / "data" / channel["ChannelName"])
            run.secondary = "Training"
            self._train(run, request, base)
            if run.stop_requested:
                run.status, run.secondary = "Stopped", "Stopped"
            elif (base / "output" / "failure").exists() or run.process.returncode != 0:
                failure = base / "output" / "failure"
                reason = failure.read_text().strip() if failure.exists() else f"exit code {run.process.returncode}"
                run.status, run.secondary = "Failed", "Failed"
                run.failure = f"AlgorithmError: {reason}"[:_FAILURE_MAX]
            else:
                run.secondary = "Uploading"
                run.artifacts = self._upload_model(request, base / "model")
                run.status, run.secondary = "Completed", "Completed"
        except Exception as error:  # the stand-in's own fault still ends the job
            run.status, run.secondary, run.failure = "Failed", "Failed", f"InternalServerError: {error}"
        run.ended = time.time()

    def _download_channel(self, channel: dict, folder: pathlib.Path) -> None:
        bucket, prefix = split_uri(channel["DataSource"]["S3DataSource"]["S3Uri"])
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                target = folder / obj["Key"][len(prefix) :].lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, obj["Key"], str(target))

    def _train(self, run: Run, request: dict, base: pathlib.Path) -> None:
        stream = f"{run.name}/algo-1-{int(time.time())}"
        group = TRAINING_LOG_GROUP
        try:
            self.logs.create_log_group(logGroupName=group)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        run.process = start_toolkit(base, self.job_env)
        # SageMaker stops a job that outlives MaxRuntimeInSeconds.
        watchdog = threading.Timer(request["StoppingCondition"]["MaxRuntimeInSeconds"], stop, (run,))
        watchdog.start()
        pending: list[str] = []
        flushed = time.monotonic()
        for line in run.process.stdout:
            run.lines.append(line.rstrip())
            pending.append(line.rstrip())
            if time.monotonic() - flushed > 1:
                self._send(group, stream, pending)
                pending, flushed = [], time.monotonic()
        run.process.wait()
        watchdog.cancel()
        self._send(group, stream, pending)

    def _send(self, group: str, stream: str, lines: list[str]) -> None:
        if lines:
            now = int(time.time() * 1000)
            self.logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": line or " "} for line in lines],
            )

    def _upload_model(self, request: dict, model: pathlib.Path) -> str:
        output = request["OutputDataConfig"]
        bucket, prefix = split_uri(output["S3OutputPath"])
        prefix = f"{prefix.rstrip('/')}/{request['TrainingJobName']}/output/".lstrip("/")
        if output.get("CompressionType", "GZIP") == "NONE":
            for path in sorted(model.rglob("*")):
                if path.is_file():
                    self.s3.upload_file(str(path), bucket, f"{prefix}model/{path.relative_to(model).as_posix()}")
            return f"s3://{bucket}/{prefix}model"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for path in sorted(model.iterdir()):
                archive.add(path, arcname=path.name)
        buffer.seek(0)
        self.s3.upload_fileobj(buffer, bucket, f"{prefix}model.tar.gz")
        return f"s3://{bucket}/{prefix}model.tar.gz"


def stop(run: Run) -> None:
    """SIGTERM to the toolkit and the job it runs, as SageMaker stops a container."""
    run.stop_requested = True
    if run.process and run.process.poll() is None:
        try:
            os.killpg(run.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key
