"""Deep Learning Container images: the pinned TF version and its per-region URI.

The region -> ECR account table is the SageMaker SDK's (it differs in
af-south-1, ap-east-1, the China regions and more), looked up offline; this
module only pins the version and turns a URI into the repository ARN the
execution role may pull from.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache


def _import_sdk():
    """The SDK's image table, imported with AWS_PROFILE hidden.

    Importing `sagemaker.core.image_uris` builds a boto3 session
    (`sagemaker.core.jumpstart.constants`), which raises ProfileNotFound when
    AWS_PROFILE names a profile this machine lacks; looking up an image URI
    needs no profile, so a stale one must not break an offline synth.
    """
    hidden = {name: os.environ.pop(name) for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE") if name in os.environ}
    try:
        from sagemaker.core import image_uris
        from sagemaker.core.serverless_inference_config import ServerlessInferenceConfig
    finally:
        os.environ.update(hidden)
    return image_uris, ServerlessInferenceConfig


image_uris, ServerlessInferenceConfig = _import_sdk()

# The one place the image versions are pinned. A SavedModel must be served by
# a TF at least as new as the one that wrote it, so the training image (which
# loads and checks the model) may not be newer than the serving image. The
# SDK has no 2.20 training image; 2.19 is the newest that fits.
SERVING_TF_VERSION = "2.20.0"
TRAINING_TF_VERSION = "2.19.0"
TRAINING_PY_VERSION = "py312"
_FRAMEWORK = "tensorflow"

# The SDK logs at INFO for choices we make on purpose (e.g. CPU for serverless).
logging.getLogger("sagemaker").setLevel(logging.WARNING)


@dataclass(frozen=True)
class ContainerImage:
    uri: str
    account: str
    region: str
    repository: str

    def repository_arn(self, partition: str) -> str:
        return f"arn:{partition}:ecr:{self.region}:{self.account}:repository/{self.repository}"


@lru_cache(maxsize=None)
def supported_regions() -> tuple[str, ...]:
    """Regions where the SDK knows both pinned images."""
    config = image_uris.config_for_framework(_FRAMEWORK)
    serving = config["inference"]["versions"][SERVING_TF_VERSION]["registries"]
    training = config["training"]["versions"][TRAINING_TF_VERSION]["registries"]
    return tuple(sorted(set(serving) & set(training)))


def check_versions() -> None:
    """Refuse a training image whose TF is newer than the serving image's."""
    training, serving = TRAINING_TF_VERSION, SERVING_TF_VERSION
    if _minor(training) > _minor(serving):
        raise ValueError(
            f"The training image's TensorFlow {training} is newer than the serving image's "
            f"{serving}: a model it verifies may not load in TF Serving. Pin "
            "TRAINING_TF_VERSION at or below SERVING_TF_VERSION in stacks/images.py."
        )


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def serving_image(region: str, instance_type: str | None) -> ContainerImage:
    """The TF Serving inference image; `instance_type=None` means serverless (CPU)."""
    uri = image_uris.retrieve(
        _FRAMEWORK,
        region=region,
        version=SERVING_TF_VERSION,
        image_scope="inference",
        instance_type=instance_type,
        serverless_inference_config=ServerlessInferenceConfig() if instance_type is None else None,
    )
    return _parse(uri)


def training_image(region: str, instance_type: str) -> ContainerImage:
    """The TensorFlow training image the packaging job runs in."""
    check_versions()
    uri = image_uris.retrieve(
        _FRAMEWORK,
        region=region,
        version=TRAINING_TF_VERSION,
        py_version=TRAINING_PY_VERSION,
        image_scope="training",
        instance_type=instance_type,
    )
    return _parse(uri)


def _parse(uri: str) -> ContainerImage:
    # <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<tag>
    host, _, path = uri.partition("/")
    account, _, rest = host.partition(".dkr.ecr.")
    region = rest.split(".", 1)[0]
    repository = path.rsplit(":", 1)[0]
    return ContainerImage(uri=uri, account=account, region=region, repository=repository)
