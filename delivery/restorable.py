"""What a stored assembly may deploy when a rollback restores it.

A stored assembly is bytes in the stage's bucket, written by whoever may act as
the stage's promotion role, and a rollback deploys it with the deploy role's
credentials. So before it is deployed it must be what this project's serving
stacks are, serving the record's artifact, and nothing more:

- its serving stack is for the stage's region, and holds only the kinds of
  resource a promoted stage's serving stack is made of: nothing that runs code
  of its own (no Lambda function, no custom resource);
- every SageMaker Model runs the region's TensorFlow Serving image (the
  SageMaker SDK's registry for it: any version, since the infrastructure of an
  earlier commit may pin an earlier one) under a role the template itself
  defines, on the record's artifact in the stage's own bucket.

A rollback deploys only the serving stack (`promote.cdk_deploy`): the storage stack holds
the bucket's guards and roles, which an older assembly would take back to an
older state.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, NoReturn

from delivery.artifacts import PromotionError
from stacks.stage.images import serving_image
from stacks.stage.names import StageNames

# The resource types of every promoted stage's serving stack (instances, alarms,
# deployment guardrails, autoscaling, the dashboard); tests/delivery keeps this
# equal to what the stacks synthesize.
SERVING_RESOURCE_TYPES = frozenset(
    {
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::CDK::Metadata",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::KMS::Key",
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
        "AWS::SageMaker::Endpoint",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Model",
    }
)


def require_restorable(assembly: pathlib.Path, names: StageNames, region: str, artifact_key: str) -> None:
    """Refuse `assembly` unless its serving stack is one a rollback may deploy (above)."""
    template = _serving_template(assembly, names, region)
    resources = template.get("Resources", {})
    foreign = sorted({resource.get("Type") for resource in resources.values()} - SERVING_RESOURCE_TYPES)
    if foreign:
        _refuse(assembly, f"its serving stack holds {foreign}, which no serving stack of a promoted stage has")
    models = [
        resource.get("Properties", {}) for resource in resources.values() if resource["Type"] == "AWS::SageMaker::Model"
    ]
    if not models:
        _refuse(assembly, "its serving stack has no SageMaker Model")
    image = serving_image(region, None)
    roles = {name for name, resource in resources.items() if resource["Type"] == "AWS::IAM::Role"}
    location = {"Fn::Join": ["", ["s3://", {"Fn::ImportValue": names.bucket_name_export}, f"/{artifact_key}"]]}
    for model in models:
        role = model.get("ExecutionRoleArn")
        if not (isinstance(role, dict) and role.get("Fn::GetAtt", [None])[0] in roles):
            _refuse(assembly, f"a Model runs as {role!r}, not as a role its own stack defines")
        for container in [model.get("PrimaryContainer"), *model.get("Containers", [])]:
            if container is None:
                continue
            uri = str(container.get("Image"))
            registry = f"{image.account}.dkr.ecr.{region}."
            if not (uri.startswith(registry) and uri.partition("/")[2].startswith(f"{image.repository}:")):
                _refuse(assembly, f"a Model runs the image {uri}, not the region's {image.repository}")
            data = container.get("ModelDataUrl") or container.get("ModelDataSource", {}).get("S3DataSource", {}).get(
                "S3Uri"
            )
            if data != location:
                served = json.dumps(data)
                _refuse(assembly, f"a Model serves {served}, not the record's {artifact_key} in the stage's bucket")


def _serving_template(assembly: pathlib.Path, names: StageNames, region: str) -> dict[str, Any]:
    try:
        manifest = json.loads((assembly / "manifest.json").read_text())
        stacks = {
            name: artifact
            for name, artifact in manifest["artifacts"].items()
            if artifact.get("type") == "aws:cloudformation:stack"
        }
        environment = stacks[names.serving_stack]["environment"]
        template = json.loads((assembly / f"{names.serving_stack}.template.json").read_text())
    except (OSError, ValueError, KeyError, TypeError) as error:
        _refuse(assembly, f"it holds no readable serving stack {names.serving_stack} ({error!r})")
    if set(stacks) != {names.storage_stack, names.serving_stack}:
        _refuse(assembly, f"it holds the stacks {sorted(stacks)}, not stage {names.stage}'s two")
    if not str(environment).endswith(f"/{region}"):
        _refuse(assembly, f"its serving stack is for {environment}, not the stage's region {region}")
    return template


def _refuse(assembly: pathlib.Path, why: str) -> NoReturn:
    raise PromotionError(f"The stored assembly {assembly.name} is not one a rollback may deploy: {why}.")
