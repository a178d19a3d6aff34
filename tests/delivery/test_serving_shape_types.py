"""A stored template with a value of another type anywhere (a scalar or an object for a
list, a list or an object for a scalar, a list or a number for a string) ends in the
refusal, never in another error; in what the checks read, it is refused."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest

from delivery import restorable
from delivery.artifacts import PromotionError
from delivery.restorable import require_restorable
from stacks.stage.images import serving_image
from tests.delivery.shape_variants import ACCOUNTS, VARIANTS

OWN_ROLE = {"Ref": "ModelRole997FC3A9"}


def _wrong(value: Any) -> list[Any]:
    """Values of another type than `value`: a scalar or an object for a list, a list or
    an object for a scalar, a list or a number for a string or a function."""
    if isinstance(value, list):
        return ["x", OWN_ROLE]
    if isinstance(value, dict) and not any(key == "Ref" or key.startswith("Fn::") for key in value):
        return ["x", [value]]
    if isinstance(value, str | dict):
        return [{"k": "v"}, [value], 7]
    return ["x", [value]]


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    """The path of every value in `value`, down to the functions (evaluated whole)."""
    inner: Any = ()
    if isinstance(value, dict) and not any(key == "Ref" or key.startswith("Fn::") for key in value):
        inner = value.items()
    elif isinstance(value, list):
        inner = enumerate(value)
    return [path, *(found for key, item in inner for found in _paths(item, (*path, key)))]


# The properties the checks read: every value of another type in them is refused, but
# in a policy's statements (where one value and a list of it mean the same, and a Deny
# only takes away) and in these parts of them the stacks' form leaves free.
FREE = {"Statement", "Version", "Environment", "CaptureOptions", "EnableCapture", "InitialSamplingPercentage"}
FREE |= {"VariantName", "InitialVariantWeight", "CompressionType", "S3DataType"}
CHECKED = {
    "AWS::ApplicationAutoScaling::ScalableTarget": {"MaxCapacity", "MinCapacity", "ResourceId", "ScalableDimension"},
    "AWS::ApplicationAutoScaling::ScalingPolicy": {"ScalingTargetId"},
    "AWS::CloudWatch::Alarm": {"AlarmActions", "Tags"},
    "AWS::IAM::Policy": {"PolicyDocument", "Roles"},
    "AWS::IAM::Role": {"AssumeRolePolicyDocument", "Tags"},
    "AWS::KMS::Key": {"KeyPolicy", "Tags"},
    "AWS::SNS::Subscription": {"Endpoint", "Protocol", "TopicArn"},
    "AWS::SNS::Topic": {"KmsMasterKeyId", "Tags"},
    "AWS::SNS::TopicPolicy": {"PolicyDocument", "Topics"},
    "AWS::SageMaker::Endpoint": {"EndpointConfigName", "EndpointName", "Tags"},
    "AWS::SageMaker::EndpointConfig": {"DataCaptureConfig", "KmsKeyId", "ProductionVariants", "Tags"},
    "AWS::SageMaker::Model": {"EnableNetworkIsolation", "ExecutionRoleArn", "PrimaryContainer", "Tags"},
}


@pytest.mark.parametrize("variant", ["prod-emails-prefix", "staging-serverless-archive"])
def test_a_value_of_another_type_anywhere_ends_in_the_refusal_and_nothing_else(variants, variant, monkeypatch):
    """Every value of every resource, replaced by one of another type: the check passes
    or refuses, never raises anything else; and refuses each in a property it reads."""
    # The region's image, looked up once: the SDK reads its registry afresh each time.
    monkeypatch.setattr(restorable, "serving_image", functools.cache(serving_image))
    _, key, _, _ = VARIANTS[variant]
    template, config = variants[variant]
    accepted = set()
    for name, resource in template["Resources"].items():
        for path in _paths(resource.get("Properties", {}))[1:]:
            value = functools.reduce(lambda inner, step: inner[step], path, resource["Properties"])
            for wrong in _wrong(value):
                changed = copy.deepcopy(template)
                inner = functools.reduce(lambda at, step: at[step], path[:-1], changed["Resources"][name]["Properties"])
                inner[path[-1]] = wrong
                try:
                    require_restorable(changed, config, config.region, ACCOUNTS[config.stage], key)
                except PromotionError:
                    continue
                accepted.add((resource["Type"], *path))
    assert accepted, "no value passed: the checks never ran to their end"
    assert not [
        (kind, *path) for kind, *path in accepted if path[0] in CHECKED.get(kind, ()) and not FREE & set(path[1:])
    ]
