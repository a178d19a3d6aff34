"""The numbers and lists behind the rules: plain data and predicates, each with its source.

Used by the stage config (to refuse a value at synth), by the template check and
by the rehearsal's SageMaker (to refuse a request); nothing here imports the CDK.
"""

from __future__ import annotations

import re
from functools import cache

from botocore.loaders import Loader

# ProductionVariantServerlessConfig: MemorySizeInMB in 1 GB steps, MaxConcurrency 1-200.
SERVERLESS_MEMORY_MB = tuple(range(1024, 6145, 1024))
SERVERLESS_MAX_CONCURRENCY = (1, 200)

# Regions with SageMaker Serverless Inference, as the developer guide lists them
# ("Deploy models with Amazon SageMaker Serverless Inference", supported Regions).
SERVERLESS_REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "af-south-1",
        "ap-east-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "eu-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-north-1",
        "eu-south-1",
        "me-south-1",
        "sa-east-1",
    }
)

# Instance families with local NVMe instance store. SageMaker's references
# (CreateEndpointConfig.KmsKeyId, ResourceConfig.VolumeKmsKeyId) refuse a KMS key
# for them and point to EC2's "Instance store volume limits for EC2 instances"
# table, from which this allow-list is taken (ml.<family> is the EC2 family);
# SageMaker's own examples, ml.p4d, ml.g4dn and ml.g5, are in it.
# Every family SageMaker offers (botocore's instance type enums) is here or in
# EBS_ONLY_FAMILIES, which a test holds, so a new family forces a decision.
INSTANCE_STORE_FAMILIES = frozenset(
    {
        # general purpose
        "m5ad",
        "m5d",
        "m5dn",
        "m6gd",
        "m6id",
        "m6idn",
        "m7gd",
        "m8gd",
        # compute optimized
        "c5ad",
        "c5d",
        "c6gd",
        "c6id",
        "c7gd",
        "c8gd",
        # memory optimized
        "r5ad",
        "r5d",
        "r5dn",
        "r6gd",
        "r6id",
        "r6idn",
        "r7gd",
        "r8gd",
        "x1",
        "x1e",
        "x2gd",
        "x2idn",
        "x2iedn",
        "z1d",
        # accelerated computing
        "dl1",
        "dl2q",
        "g4ad",
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "g6f",
        # g7 and g7e: the EC2 documents at hand do not list them yet. Decided
        # instance store, the side that cannot fail a deploy: SageMaker refuses a
        # KMS key with local storage, while an EBS-only type without one deploys
        # (it only forgoes the stage's own key). Every G family SageMaker offers
        # since g4dn has NVMe instance store.
        "g7",
        "g7e",
        "gr6",
        "gr6f",
        "p3dn",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "p6-b200",
        "p6-b300",
        "p6e-gb200",
        "trn1",
        "trn1n",
        "trn2",
        # storage optimized
        "d2",
        "d3",
        "d3en",
        "h1",
        "i3",
        "i3en",
        "i4g",
        "i4i",
        "im4gn",
        "is4gen",
    }
)

# Families with EBS storage only: absent from EC2's instance store table above
# (the EC2 Instance Types guide lists their storage as "EBS only"); SageMaker's
# ResourceConfig.VolumeSizeInGB names ml.c5 and ml.p2 as families that use EBS volumes.
EBS_ONLY_FAMILIES = frozenset(
    {
        # general purpose
        "m4",
        "m5",
        "m6g",
        "m6i",
        "m7i",
        "m7i-flex",
        "m8g",
        "m8i",
        "m8i-flex",
        "t2",
        "t3",
        # compute optimized
        "c4",
        "c5",
        "c5n",
        "c6g",
        "c6gn",
        "c6i",
        "c6in",
        "c7g",
        "c7i",
        "c7i-flex",
        "c8g",
        "c8i",
        "c8i-flex",
        # memory optimized
        "r5",
        "r6g",
        "r6i",
        "r7i",
        "r8g",
        "r8i",
        "r8i-flex",
        # accelerated computing
        "inf1",
        "inf2",
        "p2",
        "p3",
    }
)

INSTANCE_TYPE = re.compile(r"^ml\.([a-z0-9]+(?:-[a-z0-9]+)?)\.[a-z0-9]+$")

# The instance types SageMaker offers for each purpose: the valid values of
# ProductionVariant.InstanceType and ResourceConfig.InstanceType in the API
# reference, as botocore's copy of the SageMaker service model names their enums.
ENDPOINT_INSTANCE_TYPES = "ProductionVariantInstanceType"
TRAINING_INSTANCE_TYPES = "TrainingInstanceType"
_PURPOSES = {ENDPOINT_INSTANCE_TYPES: "real-time endpoints", TRAINING_INSTANCE_TYPES: "training jobs"}

# CreateTrainingJob.HyperParameters: each value at most 2500 characters.
HYPERPARAMETER_MAX = 2500


# Instance families whose CPUs are Arm: AWS Graviton (the `g` attribute of EC2's
# "Instance type naming conventions") and NVIDIA Grace (P6e-GB200, "Amazon EC2 P6e
# instances"). The TensorFlow DLC images the SageMaker SDK lists for them are
# separate Graviton builds, which the pinned versions lack, and its table does not
# know every such family: an x86 image there fails only when the endpoint starts.
# A test holds this list to the naming convention over botocore's enums.
ARM_FAMILIES = frozenset(
    {"c6g", "c6gd", "c6gn", "c7g", "c8g", "m6g", "m6gd", "m8g", "r6g", "r6gd", "r7gd", "r8g", "p6e-gb200"}
)


def is_arm(instance_type: str) -> bool:
    return instance_family(instance_type) in ARM_FAMILIES


def instance_family(instance_type: str) -> str | None:
    match = INSTANCE_TYPE.fullmatch(instance_type)
    return match.group(1) if match else None


def has_instance_store(instance_type: str) -> bool:
    return instance_family(instance_type) in INSTANCE_STORE_FAMILIES


@cache
def offered_instance_types(shape: str) -> tuple[str, ...]:
    """The instance types the SageMaker service model's enum `shape` lists, in its order.

    Read from the data botocore ships, and only that: no credentials, no network,
    and no service model a user keeps in ~/.aws/models, so every synth with the
    pinned botocore reads the same list.
    """
    loader = Loader(extra_search_paths=[Loader.BUILTIN_DATA_PATH], include_default_search_paths=False)
    return tuple(loader.load_service_model("sagemaker", "service-2")["shapes"][shape]["enum"])


def unoffered(instance_type: str, shape: str) -> str | None:
    """Why `instance_type` is not among the types `shape` lists (the sizes its family
    comes in, or what else the family is offered for), or None when it is."""
    offered = offered_instance_types(shape)
    if instance_type in offered:
        return None
    family = instance_family(instance_type)
    if family is None:
        return "not an instance type"
    sizes = [kind.rsplit(".", 1)[1] for kind in offered if instance_family(kind) == family]
    if sizes:
        return f"ml.{family} is offered as {', '.join(sizes)}"
    elsewhere = [
        purpose
        for other, purpose in _PURPOSES.items()
        if other != shape and any(instance_family(kind) == family for kind in offered_instance_types(other))
    ]
    return f"ml.{family} is offered only for {' and '.join(elsewhere)}" if elsewhere else f"no ml.{family} is offered"
