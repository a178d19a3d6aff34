"""Deep Learning Container images: the pinned TF version and its per-region URI.

The region -> ECR account table is the SageMaker SDK's (it differs in
af-south-1, ap-east-1, the China regions and more), looked up offline; this
module only pins the version and turns a URI into the repository ARN the
execution role may pull from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from sagemaker.core import image_uris
from sagemaker.core.serverless_inference_config import ServerlessInferenceConfig

# The one place the serving image version is pinned. A SavedModel must be
# served by a TF at least as new as the one that wrote it.
SERVING_TF_VERSION = "2.20.0"
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
    """Regions where the SDK knows the pinned TF Serving image."""
    config = image_uris.config_for_framework(_FRAMEWORK)["inference"]
    return tuple(sorted(config["versions"][SERVING_TF_VERSION]["registries"]))


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


def _parse(uri: str) -> ContainerImage:
    # <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<tag>
    host, _, path = uri.partition("/")
    account, _, rest = host.partition(".dkr.ecr.")
    region = rest.split(".", 1)[0]
    repository = path.rsplit(":", 1)[0]
    return ContainerImage(uri=uri, account=account, region=region, repository=repository)
