"""Custom-resource handlers that run the packaging training job.

Used by CDK's Provider framework: `on_event` starts (or adopts, or stops) the
job and returns its name as the physical id; `is_complete` is polled until the
job ends and returns the artifact's location and tree digest. Plain functions
over the event dicts; the only AWS edge is `client()`.
"""

from __future__ import annotations

import json
import logging
import os
import tarfile
import time
from typing import IO, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .job_request import (
    Attribute,
    JobContract,
    JobProperties,
    job_name,
    memory_problem,
    parse_properties,
    training_job_request,
)

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

# A job in these states will never yield an artifact: never adopt one.
_FINISHED_BADLY = ("Failed", "Stopped", "Stopping", "Deleting")
_MAX_ATTEMPTS = 20
_clients: dict[str, Any] = {}


# A throttle or a 5xx is retried (botocore's standard mode): one hiccup must not
# fail a deploy that waited most of an hour, nor start a second job.
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 10})


def manifest_name() -> str:
    """The job's manifest file, as the construct names it (from the packager that writes it)."""
    return os.environ["MANIFEST_NAME"]


def job_contract() -> JobContract:
    """How the job is called, as the construct hands it over (from the job that reads it)."""
    return JobContract.from_environment(os.environ)


def client(service: str):
    """One cached boto3 client per service: the seam tests stub."""
    if service not in _clients:
        _clients[service] = boto3.client(service, config=_RETRIES)
    return _clients[service]


def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    request = event["RequestType"]
    logger.info("%s %s", request, event.get("PhysicalResourceId", ""))
    if request == "Delete":
        # Artifacts stay: a rollback may still serve them; lifecycle rules age them out.
        stop_if_running(event["PhysicalResourceId"])
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    props = parse_properties(event["ResourceProperties"])
    if request == "Update":
        old = event["PhysicalResourceId"]
        if old.startswith(job_name(props)):
            # Nothing that shapes the artifact changed: keep the job and its id.
            return {"PhysicalResourceId": old}
    return {"PhysicalResourceId": start_or_adopt(props)}


def start_or_adopt(props: JobProperties) -> str:
    sagemaker = client("sagemaker")
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        name = job_name(props, attempt)
        job = _describe(name)
        if job is None:
            sagemaker.create_training_job(**training_job_request(name, props, job_contract()))
            logger.info("started %s", name)
            return name
        status = job["TrainingJobStatus"]
        if status == "Completed" and not _artifact_present(job):
            # Its artifact is gone (or was never written): adopting it would fail forever.
            continue
        if status not in _FINISHED_BADLY:
            logger.info("adopting %s (%s)", name, status)
            return name
    raise RuntimeError(
        f"{_MAX_ATTEMPTS} packaging jobs for these inputs failed ({job_name(props)}-*); "
        "read their FailureReason and fix the cause before deploying again."
    )


def is_complete(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    name = event["PhysicalResourceId"]
    job = client("sagemaker").describe_training_job(TrainingJobName=name)
    status = job["TrainingJobStatus"]
    if status == "Completed":
        artifact = artifact_uri(job)
        manifest = read_manifest(artifact)
        props = parse_properties(event["ResourceProperties"])
        if props.serverless_memory_mb:
            problem = memory_problem(manifest["total_bytes"], props.serverless_memory_mb)
            if problem:
                raise RuntimeError(f"Packaging job {name} completed, but {problem}.")
        return {
            "IsComplete": True,
            "Data": {
                Attribute.ARTIFACT_URI: artifact,
                # The key alone: the Model's role may read exactly this artifact.
                Attribute.ARTIFACT_KEY: artifact.removeprefix("s3://").partition("/")[2],
                Attribute.TREE_DIGEST: manifest["tree_digest"],
                Attribute.TRAINING_JOB_NAME: name,
            },
        }
    if status in ("Failed", "Stopped", "Deleting"):
        raise RuntimeError(f"Packaging job {name} {status.lower()}: {job.get('FailureReason', 'no reason given')}")
    limit = int(os.environ["WAIT_LIMIT_SECONDS"])
    if time.time() - job["CreationTime"].timestamp() > limit:
        # Stop it now rather than leave it to the Delete that CloudFormation's
        # rollback may or may not send after the Provider gives up.
        stop_if_running(name)
        raise RuntimeError(
            f"Packaging job {name} did not finish within {limit} seconds, so it was stopped; "
            "raise packaging.max_runtime_minutes or use a faster instance type."
        )
    return {"IsComplete": False}


def artifact_uri(job: dict[str, Any]) -> str:
    """Where the job put /opt/ml/model, as DescribeTrainingJob spells it:
    `<job>/output/model.tar.gz` (GZIP), or the prefix `<job>/output/model` (NONE),
    which SageMaker hosting needs to end in a slash."""
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    return uri if uri.endswith(".tar.gz") else uri.rstrip("/") + "/"


def read_manifest(artifact: str) -> dict[str, Any]:
    """The job's manifest.json: beside the model files of a prefix, or a member
    of the model.tar.gz (read as a stream until it is found)."""
    bucket, _, key = artifact.removeprefix("s3://").partition("/")
    try:
        if not artifact.endswith(".tar.gz"):
            return json.loads(client("s3").get_object(Bucket=bucket, Key=f"{key}{manifest_name()}")["Body"].read())
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                if member.isfile() and member.name.removeprefix("./") == manifest_name():
                    return json.loads(cast(IO[bytes], archive.extractfile(member)).read())
        raise RuntimeError(f"The packaging job completed but {artifact} holds no {manifest_name()}.")
    except ClientError as error:
        raise RuntimeError(
            f"The packaging job completed but {artifact} cannot be read "
            f"({error.response['Error']['Code']}): the artifact is missing or not the "
            "packaging job's."
        ) from error


def _artifact_present(job: dict[str, Any]) -> bool:
    if "ModelArtifacts" not in job:
        return False
    artifact = artifact_uri(job)
    bucket, _, key = artifact.removeprefix("s3://").partition("/")
    try:
        client("s3").head_object(Bucket=bucket, Key=key if artifact.endswith(".tar.gz") else f"{key}{manifest_name()}")
    except ClientError as error:
        # Only a definite "not found" means the artifact is gone; anything else is
        # no answer, and starting a new job on no answer would waste one.
        if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def stop_if_running(name: str) -> None:
    job = _describe(name)
    if job and job["TrainingJobStatus"] == "InProgress":
        client("sagemaker").stop_training_job(TrainingJobName=name)
        logger.info("stopped %s", name)


def _describe(name: str) -> dict[str, Any] | None:
    try:
        return client("sagemaker").describe_training_job(TrainingJobName=name)
    except ClientError as error:
        # SageMaker answers an unknown job name with a ValidationException
        # ("Requested resource not found"); no other answer means there is none.
        code, message = error.response["Error"]["Code"], error.response["Error"].get("Message", "").lower()
        if code == "ResourceNotFound" or (
            code == "ValidationException" and ("not found" in message or "could not find" in message)
        ):
            return None
        raise
