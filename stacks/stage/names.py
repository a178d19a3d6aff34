"""The names a stage's parts find each other by, across processes: its two stacks,
its endpoint, its dashboard, its packaging jobs and where they write, the exports the
serving stack, `make promote` and CI read, the serving stack's outputs, and where
SageMaker puts what the stage runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from packaging_job.packager.manifest import MANIFEST_NAME

# Where SageMaker writes what a stage runs (developer guide: "Log groups and streams that
# Amazon SageMaker AI sends to Amazon CloudWatch Logs", "Monitor Amazon SageMaker AI with
# Amazon CloudWatch"): every training job logs to one group, a stream per host named
# `<job>/algo-<n>-<epoch>`; an endpoint logs to a group of its own; an endpoint's
# invocation metrics have a namespace of their own, and instances publish their CPU,
# memory and disk in a namespace per kind of job.
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
INVOCATION_METRICS_NAMESPACE = "AWS/SageMaker"
ENDPOINT_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"


# Where packaging jobs write in a stage's bucket, each job into `<prefix><job name>/output/`;
# the bucket policy lets only the packaging role write there (`stacks/storage/bucket_guard.py`).
PACKAGING_PREFIX = "artifacts/packaging/"
# Where an endpoint's data capture writes in a stage's bucket, when the stage turns it on:
# the Model's role may write only there (`stacks/serving/model_role.py`), and a rolled-back
# template may capture only there (`delivery/serving_shape.py`).
DATA_CAPTURE_PREFIX = "datacapture/"
# What an uncompressed artifact holds (`packaging_job/packager/package.py`): the folder TF
# Serving loads, `<model name>/<version>/`, and the packaging manifest at its root. The
# Model's role may read only these (`stacks/serving/model_role.py`): SageMaker downloads
# every object under an S3Prefix (API reference, "S3ModelDataSource"), so one added
# anywhere else under it fails the download instead of being served.


def served_folder(model_name: str, version: int | str) -> str:
    """The folder of an uncompressed artifact TF Serving loads: `<name>/<version>/`."""
    return f"{model_name}/{version}/"


def served_objects(prefix: str, model_name: str, version: int | str) -> tuple[str, str]:
    """The keys of the uncompressed artifact at `prefix` its Model may read, as IAM
    patterns: its served folder's objects and its manifest."""
    return f"{prefix}{served_folder(model_name, version)}*", f"{prefix}{MANIFEST_NAME}"


def endpoint_log_group(endpoint: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint}"


class ServingOutputs:
    """The serving stack's output keys, which `make promote`, `make smoke`, `make status`,
    `make digest`, `make assembly` and the rehearsal read."""

    ARTIFACT_LOCATION = "ArtifactLocation"
    TREE_DIGEST = "TreeDigest"
    PACKAGING_JOB_NAME = "PackagingJobName"
    ENDPOINT_NAME = "EndpointName"
    DASHBOARD_URL = "DashboardUrl"
    INVOKE_COMMAND = "InvokeCommand"


@dataclass(frozen=True)
class StageNames:
    project: str
    stage: str

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stage}"

    @property
    def storage_stack(self) -> str:
        return f"{self.prefix}-storage"

    @property
    def serving_stack(self) -> str:
        return f"{self.prefix}-serving"

    @property
    def endpoint(self) -> str:
        return self.prefix

    def dashboard(self, region: str) -> str:
        """The stage's CloudWatch dashboard in `region`: the endpoint name and the region.

        Dashboards are global to an account, not regional (CloudFormation reference,
        AWS::CloudWatch::Dashboard), and dev's region follows the user's environment, so a
        name without the region would let two dev deploys of one account in two regions
        claim one dashboard. An endpoint name and a region code are letters, digits and
        hyphens, 63 characters and under 20: within DashboardName's 255 of A-Z, a-z, 0-9,
        `-` and `_` (same reference).
        """
        return f"{self.endpoint}-{region}"

    @property
    def job_name_prefix(self) -> str:
        """Prefix of this stage's packaging job names (IAM scopes to `<prefix>-*`).

        12 hex characters of the endpoint name's sha256 first, then the endpoint name
        cut to 27 characters and `-pkg`. A prefix begins with its own hash, so one
        prefix can begin another's only if the two endpoint names' hashes agree in 48
        bits, whatever a stage is named. With `-<12-hex job digest>` and an attempt
        suffix (`-20` at most) a job name is at most 60 characters: SageMaker's
        TrainingJobName takes 63, `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}` (API reference,
        CreateTrainingJob).
        """
        tag = hashlib.sha256(self.endpoint.encode()).hexdigest()[:12]
        return f"{tag}-{self.endpoint[:27].rstrip('-')}-pkg"

    @property
    def packaging_output_prefix(self) -> str:
        """Where this stage's packaging jobs write in its bucket: the folders only its
        packaging role may write (its IAM policy, `<this>*`; the bucket policy)."""
        return f"{PACKAGING_PREFIX}{self.job_name_prefix}-"

    # Exports of the storage stack. Named on purpose: the serving stack's IAM findings
    # then name the export (e.g. `tfhub-serving-dev-bucket-arn/artifacts/...`), which lets
    # each be acknowledged precisely, and the storage stack cannot be deleted while a
    # serving stack imports them.
    @property
    def bucket_name_export(self) -> str:
        return f"{self.prefix}-bucket-name"

    @property
    def bucket_arn_export(self) -> str:
        return f"{self.prefix}-bucket-arn"

    @property
    def packaging_role_export(self) -> str:
        return f"{self.prefix}-packaging-role-arn"

    @property
    def promotion_role_export(self) -> str:
        return f"{self.prefix}-promotion-role-arn"
