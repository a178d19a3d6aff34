"""Custom-resource handlers that run the packaging training job.

Used by CDK's Provider framework: `on_event` starts (or adopts, or stops) the
job and returns its name as the physical id; `is_complete` is polled until the
job ends and returns the artifact's location and tree digest. Plain functions
over the event dicts; the only AWS edge is `client()`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

MANIFEST = "manifest.json"
TRAIN_CHANNEL = "train"
# A job in these states will never yield an artifact: never adopt one.
_FINISHED_BADLY = ("Failed", "Stopped", "Stopping", "Deleting")
_MAX_ATTEMPTS = 20
_clients: dict[str, Any] = {}


def client(service: str):
    """One cached boto3 client per service: the seam tests stub."""
    if service not in _clients:
        _clients[service] = boto3.client(service)
    return _clients[service]


@dataclass(frozen=True)
class JobProperties:
    """The custom resource's properties, parsed: CloudFormation sends strings."""

    job_name_prefix: str
    role_arn: str
    image: str
    source_uri: str
    source_digest: str
    hub_handle: str
    model_name: str
    model_version: int
    signature: str
    sample_input: Any
    verify_load: bool
    serving_tf_version: str
    train_uri: str
    output_uri: str
    instance_type: str
    volume_gb: int
    max_runtime_seconds: int
    spot_max_wait_seconds: int | None
    volume_kms_key_arn: str | None
    tags: tuple[tuple[str, str], ...]

    # What changes the artifact. Runtime limits, spot, the volume key and tags
    # change how a job runs, not what it writes, so they start no new job.
    _SHAPING = (
        "image", "source_digest", "hub_handle", "model_name", "model_version", "signature",
        "sample_input", "verify_load", "serving_tf_version", "output_uri", "instance_type",
        "volume_gb",
    )

    def digest(self) -> str:
        values = asdict(self)
        shaping = {key: values[key] for key in self._SHAPING}
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


def parse_properties(raw: dict[str, Any]) -> JobProperties:
    """Accept every property shape this resource has shipped.

    Shape 1 (the first) is the current one; optional keys may be absent or
    empty, as CloudFormation drops or stringifies them.
    """
    def optional_int(key: str) -> int | None:
        value = raw.get(key)
        return int(value) if value not in (None, "") else None

    sample = raw.get("SampleInput")
    tags = raw.get("Tags") or {}
    return JobProperties(
        job_name_prefix=raw["JobNamePrefix"],
        role_arn=raw["RoleArn"],
        image=raw["TrainingImage"],
        source_uri=raw["SourceUri"],
        source_digest=raw["SourceDigest"],
        hub_handle=raw["HubHandle"],
        model_name=raw["ModelName"],
        model_version=int(raw["ModelVersion"]),
        signature=raw.get("Signature") or "serving_default",
        sample_input=json.loads(sample) if sample not in (None, "") else None,
        verify_load=str(raw.get("VerifyLoad", "true")).lower() == "true",
        serving_tf_version=raw.get("ServingTfVersion", ""),
        train_uri=raw["TrainUri"],
        output_uri=raw["OutputUri"],
        instance_type=raw["InstanceType"],
        volume_gb=int(raw["VolumeSizeGb"]),
        max_runtime_seconds=int(raw["MaxRuntimeSeconds"]),
        spot_max_wait_seconds=optional_int("SpotMaxWaitSeconds"),
        volume_kms_key_arn=raw.get("VolumeKmsKeyArn") or None,
        tags=tuple(sorted(tags.items())),
    )


def job_name(props: JobProperties, attempt: int = 1) -> str:
    """Deterministic: the same inputs give the same name; a retry after a
    failed job of that name takes the next attempt number."""
    base = f"{props.job_name_prefix}-{props.digest()[:12]}"
    return base if attempt == 1 else f"{base}-{attempt}"


def training_job_request(name: str, props: JobProperties) -> dict[str, Any]:
    """The CreateTrainingJob request, in script mode as the TF container expects."""
    # The toolkit JSON-decodes each hyperparameter, as the SageMaker SDK encodes them.
    hyperparameters = {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": props.source_uri,
        "hub-handle": props.hub_handle,
        "model-name": props.model_name,
        "model-version": props.model_version,
        "signature": props.signature,
        "verify-load": "true" if props.verify_load else "false",
        "serving-tf-version": props.serving_tf_version,
    }
    if props.sample_input is not None:
        hyperparameters["sample-input"] = json.dumps(props.sample_input)
    resource_config: dict[str, Any] = {
        "InstanceType": props.instance_type,
        "InstanceCount": 1,
        "VolumeSizeInGB": props.volume_gb,
    }
    if props.volume_kms_key_arn:
        resource_config["VolumeKmsKeyId"] = props.volume_kms_key_arn
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": props.max_runtime_seconds}
    if props.spot_max_wait_seconds:
        stopping["MaxWaitTimeInSeconds"] = props.spot_max_wait_seconds
    return {
        "TrainingJobName": name,
        "RoleArn": props.role_arn,
        "AlgorithmSpecification": {"TrainingImage": props.image, "TrainingInputMode": "File"},
        "HyperParameters": {key: json.dumps(value) for key, value in hyperparameters.items()},
        "InputDataConfig": [
            {
                "ChannelName": TRAIN_CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": props.train_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
            }
        ],
        # Uncompressed: no gzip on either side; the Model reads the prefix.
        "OutputDataConfig": {"S3OutputPath": props.output_uri, "CompressionType": "NONE"},
        "ResourceConfig": resource_config,
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": bool(props.spot_max_wait_seconds),
        "Tags": [{"Key": key, "Value": value} for key, value in props.tags],
    }


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
        status = _status(name)
        if status is None:
            sagemaker.create_training_job(**training_job_request(name, props))
            logger.info("started %s", name)
            return name
        if status == "Completed" and not _has_manifest(f"{props.output_uri}{name}/output/model/"):
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
        return {
            "IsComplete": True,
            "Data": {
                "ArtifactUri": artifact,
                "TreeDigest": tree_digest(artifact),
                "TrainingJobName": name,
            },
        }
    if status in ("Failed", "Stopped", "Deleting"):
        raise RuntimeError(
            f"Packaging job {name} {status.lower()}: {job.get('FailureReason', 'no reason given')}"
        )
    limit = int(os.environ.get("WAIT_LIMIT_SECONDS", "3000"))
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
    """The folder the job uploaded /opt/ml/model to, uncompressed (CompressionType NONE):
    `<S3OutputPath><job>/output/model/`, however S3ModelArtifacts spells it."""
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    return uri.removesuffix(".tar.gz").rstrip("/") + "/"


def tree_digest(artifact: str) -> str:
    bucket, _, prefix = artifact.removeprefix("s3://").partition("/")
    try:
        body = client("s3").get_object(Bucket=bucket, Key=f"{prefix}{MANIFEST}")["Body"]
    except ClientError as error:
        raise RuntimeError(
            f"The packaging job completed but {artifact}{MANIFEST} cannot be read "
            f"({error.response['Error']['Code']}): the artifact is missing or not the "
            "packaging job's."
        ) from error
    return json.loads(body.read())["tree_digest"]


def _has_manifest(artifact: str) -> bool:
    bucket, _, prefix = artifact.removeprefix("s3://").partition("/")
    try:
        client("s3").head_object(Bucket=bucket, Key=f"{prefix}{MANIFEST}")
    except ClientError:
        return False
    return True


def stop_if_running(name: str) -> None:
    status = _status(name)
    if status == "InProgress":
        client("sagemaker").stop_training_job(TrainingJobName=name)
        logger.info("stopped %s", name)


def _status(name: str) -> str | None:
    try:
        return client("sagemaker").describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
    except ClientError as error:
        # SageMaker answers an unknown job name with a ValidationException.
        if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return None
        raise
