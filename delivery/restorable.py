"""What a rollback may deploy of a stored assembly: its serving template, checked.

A stored assembly is bytes in the stage's bucket, written by whoever may act as
the stage's promotion role, and a rollback deploys with the deploy role's
credentials. So nothing of it is deployed as stored: its cloud assembly and
asset manifests (which can name commands the CDK CLI runs, local files it
uploads, other stacks, roles or template URLs) are never read. Only its serving
template is taken, after these checks, and put into an assembly this checkout
synthesizes for the same artifact (`transplant`):

- the template has only what a serving stack's template has: no `Transform`
  (a macro or `AWS::Include` would add resources after the checks), no
  parameters but CDK's bootstrap version, no `Fn::Transform` anywhere;
- its resources are only of the kinds a promoted stage's serving stack is
  made of: nothing that runs code of its own (no Lambda, no custom resource);
- it reaches outside itself only to the stage's own exports, to ARNs of the
  stage's own account, to the services SageMaker and CloudWatch as principals,
  and to the region's TensorFlow Serving image (the SageMaker SDK's registry
  for it, any version: an earlier commit may pin an earlier one);
- every Model runs that image (no `ImageConfig`, which would let it pull from
  elsewhere) under a role the template defines, serving the record's copy in
  the stage's bucket.

A rollback deploys the serving stack alone (`promote.cdk_deploy`): the storage
stack holds the bucket's guards and roles, which an older template would take
back to what they were then.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
from collections.abc import Iterator
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
_SECTIONS = {"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules", "Conditions"}
_SECTIONS |= {"Mappings", "Resources", "Outputs"}
_PRINCIPALS = {"sagemaker.amazonaws.com", "cloudwatch.amazonaws.com"}
_ARN = re.compile(r"^arn:[\w-]+:[\w-]+:[\w-]*:(\d*):")
# An account id as ARNs, registry hosts and principals spell it (not digits inside a hash).
_ACCOUNT = re.compile(r"(?:^|[:/])(\d{12})(?=$|[:./])")


def template_of(assembly: pathlib.Path, names: StageNames) -> dict[str, Any]:
    """The stored serving template (nothing else of the assembly is read)."""
    try:
        return json.loads((assembly / f"{names.serving_stack}.template.json").read_text())
    except (OSError, ValueError) as error:
        _refuse(f"it holds no readable serving template {names.serving_stack} ({error!r})")


def require_restorable(
    template: dict[str, Any], names: StageNames, region: str, account: str, artifact_key: str
) -> None:
    """Refuse the stored serving `template` unless a rollback may deploy it (above)."""
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        _refuse("its serving template has no resources")
    sections = sorted(set(template) - _SECTIONS)
    if sections or set(template.get("Parameters", {})) - {"BootstrapVersion"}:
        _refuse(f"its serving template has {sections or sorted(template['Parameters'])}, which CDK's do not")
    resources = template["Resources"]
    foreign = sorted({str(resource.get("Type")) for resource in resources.values()} - SERVING_RESOURCE_TYPES)
    if foreign:
        _refuse(f"its serving stack holds {foreign}, which no serving stack of a promoted stage has")
    image = serving_image(region, None)
    _require_own_references(template, names, account, image.account, image.repository)
    models = [r.get("Properties", {}) for r in resources.values() if r["Type"] == "AWS::SageMaker::Model"]
    if not models:
        _refuse("its serving stack has no SageMaker Model")
    roles = {name for name, resource in resources.items() if resource["Type"] == "AWS::IAM::Role"}
    location = {"Fn::Join": ["", ["s3://", {"Fn::ImportValue": names.bucket_name_export}, f"/{artifact_key}"]]}
    registry = image.uri.partition("/")[0]
    for model in models:
        role = model.get("ExecutionRoleArn")
        if not (isinstance(role, dict) and (role.get("Fn::GetAtt") or [None])[0] in roles):
            _refuse(f"a Model runs as {role!r}, not as a role its own stack defines")
        for container in [model.get("PrimaryContainer"), *model.get("Containers", [])]:
            if container is None:
                continue
            host, _, path = str(container.get("Image")).partition("/")
            if host != registry or not path.startswith(f"{image.repository}:") or "ImageConfig" in container:
                _refuse(f"a Model runs the image {container.get('Image')}, not the region's {image.repository}")
            data = container.get("ModelDataUrl") or container.get("ModelDataSource", {}).get("S3DataSource", {}).get(
                "S3Uri"
            )
            if data != location:
                served = json.dumps(data)
                _refuse(f"a Model serves {served}, not the record's {artifact_key} in the stage's bucket")


def _require_own_references(
    template: dict[str, Any], names: StageNames, account: str, registry_account: str, repository: str
) -> None:
    """Everything the template names outside itself is the stage's own (see above)."""
    exports = {names.bucket_name_export, names.bucket_arn_export}
    # CDK's version-reporting resource is inert, and its packed text may hold any digits.
    inert = {k: r for k, r in template["Resources"].items() if r.get("Type") == "AWS::CDK::Metadata"}
    checked = {**template, "Resources": {k: r for k, r in template["Resources"].items() if k not in inert}}
    for key, value in _walk(checked):
        if key == "Fn::Transform":
            _refuse("its serving template uses Fn::Transform")
        if key == "Fn::ImportValue" and value not in exports:
            _refuse(f"it imports {value!r}, which is not its stage's bucket")
        services = [value] if isinstance(value, str) else value
        if key == "Service" and not (isinstance(services, list) and all(v in _PRINCIPALS for v in services)):
            _refuse(f"it lets {value!r} act, which no serving stack does")
        if isinstance(value, dict) and value.get("Effect") == "Allow" and "*" in _principals(value.get("Principal")):
            _refuse(f"it allows the principal {value['Principal']!r}")
        if key in ("Federated", "CanonicalUser"):
            _refuse(f"it names the principal {value!r}")
        if isinstance(value, str):
            # Account ids, also where a Fn::Join splits an ARN into parts.
            others = set(_ACCOUNT.findall(value)) - {account, registry_account}
            arn = _ARN.match(value)
            if others or (arn and arn.group(1) == registry_account and not value.endswith(f"/{repository}")):
                _refuse(f"it names {value}, outside the stage's account")
            if value.startswith("s3://") and value != "s3://":
                _refuse(f"it names {value}, not the stage's bucket")


def _principals(principal: Any) -> list[Any]:
    """A policy statement's principals: "*", or each value of its {kind: value(s)}."""
    if not isinstance(principal, dict):
        return [principal]
    return [v for value in principal.values() for v in (value if isinstance(value, list) else [value])]


def _walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    yield key, value
    if isinstance(value, dict):
        for inner_key, inner in value.items():
            yield from _walk(inner, inner_key)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk(inner, key)


def transplant(template: dict[str, Any], fresh: pathlib.Path, serving_stack: str) -> pathlib.Path:
    """Put the checked `template` into `fresh`, an assembly this checkout synthesized
    for the same artifact, as its serving stack's template: its file, and the
    content-addressed name under which the CDK CLI uploads it (the asset manifest
    and the stack's template URL), so that the new bytes are the ones deployed."""
    body = json.dumps(template, indent=1).encode()
    digest = hashlib.sha256(body).hexdigest()
    template_file = f"{serving_stack}.template.json"
    (fresh / template_file).write_bytes(body)
    assets_path = fresh / f"{serving_stack}.assets.json"
    assets = json.loads(assets_path.read_text())
    (old,) = [key for key, entry in assets["files"].items() if entry["source"]["path"] == template_file]
    entry = assets["files"].pop(old)
    for destination in entry["destinations"].values():
        destination["objectKey"] = destination["objectKey"].replace(old, digest)
    assets["files"][digest] = entry
    assets_path.write_text(json.dumps(assets, indent=1))
    manifest_path = fresh / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    properties = manifest["artifacts"][serving_stack]["properties"]
    properties["stackTemplateAssetObjectUrl"] = properties["stackTemplateAssetObjectUrl"].replace(old, digest)
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return fresh


def _refuse(why: str) -> NoReturn:
    raise PromotionError(f"The stored assembly is not one a rollback may deploy: {why}.")
