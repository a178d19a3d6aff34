"""The training job a packaging custom resource asks for: the resource's names (its
type, properties and attributes, which the construct takes from here), its properties
parsed and checked, its name (a digest of what shapes the artifact), and the
CreateTrainingJob request; also whether a serverless endpoint's memory holds a model.
Plain functions over plain data: the synth-time rulebook and promotion use them too."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

TRAIN_CHANNEL = "train"
RESOURCE_TYPE = "Custom::TfHubPackagingJob"


class Property:
    """The custom resource's property names."""

    JOB_NAME_PREFIX = "JobNamePrefix"
    ROLE_ARN = "RoleArn"
    TRAINING_IMAGE = "TrainingImage"
    SOURCE_URI = "SourceUri"
    SOURCE_DIGEST = "SourceDigest"
    HUB_HANDLE = "HubHandle"
    HUB_SHA256 = "HubSha256"
    LIMITS = "Limits"
    MODEL_NAME = "ModelName"
    MODEL_VERSION = "ModelVersion"
    SIGNATURE = "Signature"
    SAMPLE_INPUT = "SampleInput"
    VERIFY_LOAD = "VerifyLoad"
    SERVING_TF_VERSION = "ServingTfVersion"
    TRAIN_URI = "TrainUri"
    OUTPUT_URI = "OutputUri"
    INSTANCE_TYPE = "InstanceType"
    VOLUME_SIZE_GB = "VolumeSizeGb"
    MAX_RUNTIME_SECONDS = "MaxRuntimeSeconds"
    SPOT_MAX_WAIT_SECONDS = "SpotMaxWaitSeconds"
    VOLUME_KMS_KEY_ARN = "VolumeKmsKeyArn"
    TAGS = "Tags"
    COMPRESSION_TYPE = "CompressionType"
    SERVERLESS_MEMORY_MB = "ServerlessMemoryMb"


class Attribute:
    """The attributes a completed job gives the resource (`Fn::GetAtt`)."""

    ARTIFACT_URI = "ArtifactUri"
    ARTIFACT_KEY = "ArtifactKey"
    TREE_DIGEST = "TreeDigest"
    TRAINING_JOB_NAME = "TrainingJobName"


# The environment variable that carries the job's contract to the handler.
CONTRACT_VARIABLE = "JOB_CONTRACT"


@dataclass(frozen=True)
class JobContract:
    """How the packaging job is called: its program and its hyperparameters' names.

    The job owns them (`packaging_job/packager/contract.py`) and ships apart from
    this handler, so the construct hands them over in the environment."""

    program: str
    hub_handle: str
    model_name: str
    model_version: str
    signature: str
    sample_input: str
    verify_load: str
    serving_tf_version: str
    hub_sha256: str
    # Each archive limit (a key of the `Limits` property) and its hyperparameter.
    limits: dict[str, str]

    def environment(self) -> dict[str, str]:
        return {CONTRACT_VARIABLE: json.dumps(asdict(self), sort_keys=True)}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> JobContract:
        return cls(**json.loads(environ[CONTRACT_VARIABLE]))


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

    sample = raw.get(Property.SAMPLE_INPUT)
    tags = raw.get(Property.TAGS) or {}
    return JobProperties(
        job_name_prefix=raw[Property.JOB_NAME_PREFIX],
        role_arn=raw[Property.ROLE_ARN],
        image=raw[Property.TRAINING_IMAGE],
        source_uri=raw[Property.SOURCE_URI],
        source_digest=raw[Property.SOURCE_DIGEST],
        hub_handle=raw[Property.HUB_HANDLE],
        model_name=raw[Property.MODEL_NAME],
        model_version=int(raw[Property.MODEL_VERSION]),
        signature=raw[Property.SIGNATURE],
        sample_input=json.loads(sample) if sample not in (None, "") else None,
        verify_load=str(raw.get(Property.VERIFY_LOAD, "true")).lower() == "true",
        serving_tf_version=raw.get(Property.SERVING_TF_VERSION, ""),
        train_uri=raw[Property.TRAIN_URI],
        output_uri=raw[Property.OUTPUT_URI],
        instance_type=raw[Property.INSTANCE_TYPE],
        volume_gb=int(raw[Property.VOLUME_SIZE_GB]),
        max_runtime_seconds=int(raw[Property.MAX_RUNTIME_SECONDS]),
        spot_max_wait_seconds=optional_int(Property.SPOT_MAX_WAIT_SECONDS),
        volume_kms_key_arn=raw.get(Property.VOLUME_KMS_KEY_ARN) or None,
        tags=tuple(sorted(tags.items())),
        compression=raw.get(Property.COMPRESSION_TYPE) or "NONE",
        serverless_memory_mb=optional_int(Property.SERVERLESS_MEMORY_MB),
        hub_sha256=raw.get(Property.HUB_SHA256) or None,
        limits=tuple(sorted((key, int(value)) for key, value in (raw.get(Property.LIMITS) or {}).items())),
    )


def job_name(props: JobProperties, attempt: int = 1) -> str:
    """Deterministic: the same inputs give the same name; a retry after a
    failed job of that name takes the next attempt number."""
    base = f"{props.job_name_prefix}-{props.digest()[:12]}"
    return base if attempt == 1 else f"{base}-{attempt}"


def training_job_request(name: str, props: JobProperties, contract: JobContract) -> dict[str, Any]:
    """The CreateTrainingJob request, in script mode as the TF container expects,
    calling the job as `contract` says."""
    # The toolkit JSON-decodes each hyperparameter, as the SageMaker SDK encodes them.
    hyperparameters = {
        "sagemaker_program": contract.program,
        "sagemaker_submit_directory": props.source_uri,
        contract.hub_handle: props.hub_handle,
        contract.model_name: props.model_name,
        contract.model_version: props.model_version,
        contract.signature: props.signature,
        contract.verify_load: "true" if props.verify_load else "false",
        contract.serving_tf_version: props.serving_tf_version,
    }
    if props.sample_input is not None:
        hyperparameters[contract.sample_input] = json.dumps(props.sample_input)
    if props.hub_sha256:
        hyperparameters[contract.hub_sha256] = props.hub_sha256
    for key, value in props.limits:
        hyperparameters[contract.limits[key]] = value
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
