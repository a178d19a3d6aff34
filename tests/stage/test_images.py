"""DLC image URIs come from the SageMaker SDK's table; the ECR account differs by region."""

from __future__ import annotations

import pytest

from stacks.stage.images import SERVING_TF_VERSION, serving_image, supported_regions


@pytest.mark.parametrize(
    ("region", "account"),
    [
        ("us-east-1", "763104351884"),
        ("eu-west-1", "763104351884"),
        ("af-south-1", "626614931356"),
        ("ap-east-1", "871362719292"),
    ],
)
def test_serving_image_uses_the_regions_own_registry(region, account):
    image = serving_image(region, "ml.m5.large")
    assert image.uri == (
        f"{account}.dkr.ecr.{region}.amazonaws.com/tensorflow-inference:{SERVING_TF_VERSION}-cpu-py312"
    )
    assert image.repository_arn("aws") == (f"arn:aws:ecr:{region}:{account}:repository/tensorflow-inference")


def test_serverless_gets_the_cpu_image():
    assert serving_image("eu-west-1", None).uri.endswith(f":{SERVING_TF_VERSION}-cpu-py312")


def test_gpu_instances_get_the_gpu_image():
    assert serving_image("us-east-1", "ml.g5.xlarge").uri.endswith(f":{SERVING_TF_VERSION}-gpu-py312")


def test_china_regions_use_the_china_domain():
    image = serving_image("cn-north-1", "ml.m5.large")
    assert image.uri.startswith("727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/")
    assert image.repository_arn("aws-cn").startswith("arn:aws-cn:ecr:cn-north-1:727897471807:")


def test_supported_regions_cover_the_odd_registries():
    regions = supported_regions()
    assert {"us-east-1", "af-south-1", "ap-east-1", "il-central-1"} <= set(regions)
    assert list(regions) == sorted(regions)
