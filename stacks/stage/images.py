"""Deep Learning Container images: the pinned TF version and its per-region URI.

The region -> ECR account table is the SageMaker SDK's (it differs in
af-south-1, ap-east-1, the China regions and more), looked up offline; this
module only pins the version and turns a URI into the repository ARN the
execution role may pull from. Which regions have the images is read from the
SDK's own data file; the SDK itself (seconds to import) is imported only when a
URI is built, so the command-line tools, which only validate a stage's config,
never pay for it.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import os
import pathlib
from dataclasses import dataclass
from functools import cache


@cache
def _sdk():
    """The SDK's image table, imported without the user's AWS configuration.

    Importing `sagemaker.core.image_uris` builds a boto3 session
    (`sagemaker.core.jumpstart.constants`), which raises when AWS_PROFILE names
    a profile this machine lacks or the AWS config file does not parse; looking
    up an image URI needs neither, so they must not break an offline synth.
    """
    hidden = {name: os.environ.pop(name) for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE") if name in os.environ}
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        hidden.setdefault(name, os.environ.get(name))
        os.environ[name] = os.devnull
    try:
        from sagemaker.core import image_uris
        from sagemaker.core.serverless_inference_config import ServerlessInferenceConfig
    finally:
        for name, value in hidden.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return image_uris, ServerlessInferenceConfig


# The one place the image versions are pinned. The packaging job moves the hub's
# SavedModel as it is and writes none, so the training image's TF does not bound
# what serves: the job refuses a model whose writer is newer than the serving
# TF (`serving-tf-version`). Each pin is the newest image the SDK knows that is
# inside its patch window.
SERVING_TF_VERSION = "2.20.0"
TRAINING_TF_VERSION = "2.21.0"
TRAINING_PY_VERSION = "py312"
_FRAMEWORK = "tensorflow"
# AWS Deep Learning Containers developer guide, "Support Policy": "DLCs hit their
# end of patch date 365 days after the GitHub release date" (the dates per
# version: the framework support policy table of aws/deep-learning-containers).
PATCH_WINDOW = dt.timedelta(days=365)
# GitHub GA of each pinned image. Inference 2.20: released 2026-08 (field notes;
# the day is not given, the first is taken). Training 2.21: its date is not in
# the sources available offline, so TensorFlow 2.21.0's own release stands in:
# 2026-03-06, the day its first file reached PyPI (`pip index versions
# tensorflow --uploaded-prior-to`). A DLC is built on a released TensorFlow, so
# the image came out no earlier: the window computed from this date closes no
# later than the real one, and a wrong guess warns early, never late. Check both
# against the support policy table when bumping a pin.
GA_DATES = {
    ("inference", SERVING_TF_VERSION): dt.date(2026, 8, 1),
    ("training", TRAINING_TF_VERSION): dt.date(2026, 3, 6),
}

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


@cache
def supported_regions() -> tuple[str, ...]:
    """Regions where the SDK knows both pinned images (its data file, read without importing it)."""
    spec = importlib.util.find_spec("sagemaker")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The SageMaker SDK is not installed: run make synth, which installs it.")
    package = pathlib.Path(spec.submodule_search_locations[0])
    config = json.loads((package / "core" / "image_uri_config" / f"{_FRAMEWORK}.json").read_text())
    serving = config["inference"]["versions"][SERVING_TF_VERSION]["registries"]
    training = config["training"]["versions"][TRAINING_TF_VERSION]["registries"]
    return tuple(sorted(set(serving) & set(training)))


def out_of_patch(today: dt.date) -> list[str]:
    """A line for each pinned image whose patch window has closed by `today`."""
    lines = []
    for (scope, version), released in sorted(GA_DATES.items()):
        ended = released + PATCH_WINDOW
        if today > ended:
            lines.append(
                f"The pinned TensorFlow {scope} image {version} left its patch window on {ended} "
                "(DLC support policy: 365 days after release): pin a newer one in stacks/stage/images.py."
            )
    return lines


def serving_image(region: str, instance_type: str | None) -> ContainerImage:
    """The TF Serving inference image; `instance_type=None` means serverless (CPU)."""
    image_uris, ServerlessInferenceConfig = _sdk()
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
    image_uris, _ = _sdk()
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
