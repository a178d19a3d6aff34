"""Serving templates of promoted stages in each supported configuration, this
checkout's config of a stage, and changes a test makes to a template: what the
shape tests of stored templates (`test_serving_shape*.py`, `test_restorable.py`) share."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from aws_cdk.assertions import Template

from stacks.stage.config import load_stage_config
from stacks.stage.schema import StageConfig
from tests.conftest import cdk_json_context, synth_stage

ACCOUNTS = {"staging": "222222222222", "prod": "333333333333"}
DIGEST = "d" * 64
PREFIX, ARCHIVE = f"artifacts/promoted/{DIGEST}/", f"artifacts/promoted/{DIGEST}/model.tar.gz"
# What `make assembly` pins a promoted stage to: the promoted copy, a prefix on
# instances, the archive in it for serverless; and what each variant's template shows.
VARIANTS: dict[str, tuple[str, str, Callable[[dict[str, Any]], Any], tuple[str, ...]]] = {
    "prod-emails-prefix": (
        "prod",
        PREFIX,
        lambda stage: stage["alarms"].update(emails=["oncall@example.com", "second@example.com"]),
        ("AWS::SNS::Subscription", "ModelDataSource", "DataCaptureConfig", "ScalableTarget"),
    ),
    "staging-serverless-archive": (
        "staging",
        ARCHIVE,
        lambda stage: (
            stage.update(serving={"serverless": {"memory_mb": 3072, "max_concurrency": 5}}),
            stage["alarms"].update(emails=["oncall@example.com"]),
        ),
        ("ServerlessConfig", "ModelDataUrl", "AWS::SNS::Subscription"),
    ),
    "staging-capture-instance-store": (
        "staging",
        PREFIX,
        lambda stage: (
            stage.update(data_capture={"sampling_percent": 10}),
            stage["serving"]["instances"].update(type="ml.m5d.large"),
        ),
        ("DataCaptureConfig", "ml.m5d.large"),
    ),
    "prod-no-capture-autoscaling-alarms": (
        "prod",
        PREFIX,
        lambda stage: (
            stage.pop("data_capture"),
            stage["serving"]["instances"].pop("autoscaling"),
            stage.pop("alarms"),
            stage.pop("deployment"),
        ),
        ("ModelDataSource",),
    ),
    "prod-china": (
        "prod",
        PREFIX,
        lambda stage: stage.update(region="cn-north-1"),
        ("arn:aws-cn:", "amazonaws.com.cn"),
    ),
    "prod-govcloud": (
        "prod",
        PREFIX,
        lambda stage: stage.update(region="us-gov-west-1"),
        ("arn:aws-us-gov:",),
    ),
}


def checkout_config(stage: str, context: dict[str, Any] | None = None, artifact: str | None = None) -> StageConfig:
    """`stage` as this checkout's config (`context`, by default cdk.json's) has it."""
    digest = DIGEST if artifact else None
    return load_stage_config(
        context or cdk_json_context(), stage, artifact=artifact, artifact_digest=digest, check_images=False
    )


def synthesize(tmp_path_factory) -> dict[str, tuple[dict[str, Any], StageConfig]]:
    """Each variant's serving template and the config it was synthesized from."""
    templates = {}
    for name, (stage, key, change, _) in VARIANTS.items():
        context = {**copy.deepcopy(cdk_json_context()), "artifact": key, "artifact_digest": DIGEST}
        change(context["stages"][stage])
        synthesized = synth_stage(stage, tmp_path_factory.mktemp(name), context)
        templates[name] = (
            dict(Template.from_stack(synthesized.serving).to_json()),
            checkout_config(stage, context, key),
        )
    return templates


def properties_of(template: dict, kind: str) -> dict:
    return next(r["Properties"] for r in template["Resources"].values() if r["Type"] == kind)


def added(kind: str, **properties) -> Callable[[dict], None]:
    return lambda template: template["Resources"].update(Evil={"Type": kind, "Properties": properties})


def updated(kind: str, **properties) -> Callable[[dict], None]:
    return lambda template: properties_of(template, kind).update(properties)


def variant_changed(**changes) -> Callable[[dict], None]:
    return lambda template: properties_of(template, "AWS::SageMaker::EndpointConfig")["ProductionVariants"][0].update(
        changes
    )


# What an autoscaling target of the stage's endpoint is (`stacks/serving/operations.py`).
TARGET = {"ServiceNamespace": "sagemaker", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
VARIANT = "endpoint/tfhub-serving-staging/variant/AllTraffic"
