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
import tarfile
import time
from dataclasses import asdict, dataclass
from typing import IO, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

TRAIN_CHANNEL = "train"
# A job in these states will never yield an artifact: never adopt one.
_FINISHED_BADLY = ("Failed", "Stopped", "Stopping", "Deleting")
_MAX_ATTEMPTS = 20
_clients: dict[str, Any] = {}


# A serverless endpoint's memory is the whole container's: TF Serving loads the
# entire SavedModel into it and needs room for itself and the requests. The
# developer guide ("Serverless Inference", memory size) asks for memory that fits
# the model; the field notes put USE v4 (about 1 GB on disk) at the edge of 2 GB.
# So: twice the model, plus 512 MB. Promotion checks a serverless target with this too.
_MIB = 1 << 20
SERVERLESS_OVERHEAD_MB = 512


def serverless_memory_needed_mb(model_bytes: int) -> int:
    return 2 * -(-model_bytes // _MIB) + SERVERLESS_OVERHEAD_MB


def memory_problem(model_bytes: int, memory_mb: int) -> str | None:
    needed = serverless_memory_needed_mb(model_bytes)
    if memory_mb >= needed:
        return None
    return (
        f"the packaged model is {model_bytes / _MIB:.0f} MB and a serverless endpoint must hold it twice "
        f"over plus {SERVERLESS_OVERHEAD_MB} MB for TF Serving ({needed} MB), but serving.serverless.memory_mb "
        f"is {memory_mb}: raise it (at most 6144), or serve this model on instances"
    )


# A throttle or a 5xx is retried (botocore's standard mode): one hiccup must not
# fail a deploy that waited most of an hour, nor start a second job.
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 10})


def manifest_name() -> str:
    """The job's manifest file, as the construct names it (from the packager that writes it)."""
    return os.environ["MANIFEST_NAME"]


def client(service: str):
    """One cached boto3 client per service: the seam tests stub."""
    if service not in _clients:
        _clients[service] = boto3.client(service, config=_RETRIES)
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
    # OutputDataConfig.CompressionType: GZIP (a model.tar.gz, what serverless
    # endpoints take) or NONE (an uncompressed prefix).
    compression: str = "NONE"
    # The serverless endpoint's memory, checked against the packaged model's size.
    serverless_memory_mb: int | None = None
    # Shape 3: the hub archive's pinned sha256, and the archive limits
    # (`packaging.limits`, hyperparameters max-download-mb, ...).
    hub_sha256: str | None = None
    limits: tuple[tuple[str, int], ...] = ()

    # What changes the artifact. Runtime limits, spot, the volume key, tags and
    # the endpoint's memory change how a job runs or is served, not what it
    # writes, so they start no new job.
    _SHAPING = (
        "image",
        "source_digest",
        "hub_handle",
        "model_name",
        "model_version",
        "signature",
        "sample_input",
        "verify_load",
        "serving_tf_version",
        "output_uri",
        "instance_type",
        "volume_gb",
        "compression",
        "hub_sha256",
    )
    # Values earlier shapes always had: left out of the digest, so their jobs keep their names.
    _EARLIER_SHAPES = {"compression": "NONE", "hub_sha256": None}

    def digest(self) -> str:
        values = asdict(self)
        shaping = {
            key: values[key]
            for key in self._SHAPING
            if key not in self._EARLIER_SHAPES or values[key] != self._EARLIER_SHAPES[key]
        }
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


def parse_properties(raw: dict[str, Any]) -> JobProperties:
    """Accept every property shape this resource has shipped.

    Shape 3 added HubSha256 and Limits; shape 2 CompressionType and
    ServerlessMemoryMb; shape 1 (without them) always wrote an uncompressed
    prefix. Optional keys may be absent or empty, as CloudFormation drops or
    stringifies them.
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
        compression=raw.get("CompressionType") or "NONE",
        serverless_memory_mb=optional_int("ServerlessMemoryMb"),
        hub_sha256=raw.get("HubSha256") or None,
        limits=tuple(sorted((key, int(value)) for key, value in (raw.get("Limits") or {}).items())),
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
    if props.hub_sha256:
        hyperparameters["hub-sha256"] = props.hub_sha256
    for key, value in props.limits:
        hyperparameters[f"max-{key.replace('_', '-')}"] = value
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
        "OutputDataConfig": {"S3OutputPath": props.output_uri, "CompressionType": props.compression},
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
        job = _describe(name)
        if job is None:
            sagemaker.create_training_job(**training_job_request(name, props))
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
                "ArtifactUri": artifact,
                # The key alone: the Model's role may read exactly this artifact.
                "ArtifactKey": artifact.removeprefix("s3://").partition("/")[2],
                "TreeDigest": manifest["tree_digest"],
                "TrainingJobName": name,
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
