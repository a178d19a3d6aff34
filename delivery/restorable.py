"""What a rollback may deploy of a stored assembly: its serving template, checked.

A stored assembly is bytes in the stage's bucket, written by whoever may act as
the stage's promotion role, and a rollback deploys with the deploy role's
credentials. So nothing of it is deployed as stored: its cloud assembly and
asset manifests (which can name commands the CDK CLI runs, local files it
uploads, other stacks, roles or template URLs) are never read. Only its serving
template is taken, after these checks, and put into an assembly this checkout
synthesizes for the same artifact (`transplant`):

- the template has only what a serving stack's template has: no `Transform`
  or `Fn::Transform` anywhere (a macro or `AWS::Include` would add resources
  after the checks), no
  parameters but CDK's bootstrap version, outputs with a value and a description,
  nothing nested deeper than a serving stack's template ever is;
- every value of its resources (their properties and metadata, CDK's
  version-reporting resource included) and outputs is evaluated as CloudFormation
  would build it (`intrinsics.py`: `Fn::Join`, `Fn::Sub`, `Fn::Select`,
  `Fn::Split`; the stage's bucket exports and pseudo parameters; any other
  function or import refused), and then it names no account but the stage's and
  the TF Serving registry's (the region's repository only), no S3 bucket but the
  stage's;
- its resources have the serving stack's shape (`serving_shape.py`,
  `policy_shape.py`) for the stage as this checkout's config has it: only its
  kinds of resource, each with only the properties the stacks set, and in each
  property that could grant access, send data, run code or cost money the one
  form the stacks give it; so nothing runs code of its own (no Lambda, no custom
  resource), and every Model runs the region's TF Serving image (the SageMaker
  SDK's registry for it, any version: an earlier commit may pin an earlier one)
  under a role the template defines, serving the record's copy.

A template of any other shape, however malformed, is refused with a
`PromotionError` naming what is wrong.

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
from typing import Any

from delivery.intrinsics import BUCKET_NAME, Evaluator, refuse, shown
from delivery.serving_shape import require_kinds, require_shape
from delivery.shape_stage import Stage, only
from stacks.stage.images import serving_image
from stacks.stage.names import StageNames
from stacks.stage.schema import StageConfig

_SECTIONS = {"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules", "Conditions"}
_SECTIONS |= {"Mappings", "Resources", "Outputs"}
# CDK's version-reporting resource: its packed text may hold any digits.
_PACKED = "AWS::CDK::Metadata"
# Deeper than any serving stack's template nests (about a dozen levels), shallower
# than the checks' recursion may go.
_MOST_NESTED = 40
# CDK builds a dashboard's body with its alarms' ARNs in it: the one place a
# reference to a resource may be part of a string.
_DASHBOARD = "AWS::CloudWatch::Dashboard"
_ARN = re.compile(r"^arn:[\w-]+:[\w-]+:[\w-]*:(\d*):")
_S3_ARN = re.compile(r"^arn:[\w-]+:s3:::")
# An account id as ARNs, registry hosts and principals spell it (not digits inside a hash).
_ACCOUNT = re.compile(r"(?:^|[:/])(\d{12})(?=$|[:./])")


def template_of(assembly: pathlib.Path, names: StageNames) -> dict[str, Any]:
    """The stored serving template (nothing else of the assembly is read)."""
    try:
        return json.loads((assembly / f"{names.serving_stack}.template.json").read_text())
    except (OSError, ValueError, RecursionError) as error:
        refuse(f"it holds no readable serving template {names.serving_stack} ({error!r})")


def require_restorable(
    template: dict[str, Any], config: StageConfig, region: str, account: str, artifact_key: str
) -> None:
    """Refuse the stored serving `template` unless a rollback may deploy it to the stage
    of `config` (this checkout's) in `account` and `region`, serving `artifact_key` (above)."""
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        refuse("its serving template has no resources")
    _require_shallow(template)
    sections = sorted(set(template) - _SECTIONS)
    parameters = template.get("Parameters", {})
    if sections or not isinstance(parameters, dict) or set(parameters) - {"BootstrapVersion"}:
        refuse(f"its serving template has {sections or shown(repr(parameters))}, which CDK's do not")
    if "Fn::Transform" in _keys(template):
        refuse("its serving template uses Fn::Transform")
    resources = template["Resources"]
    require_kinds(resources)
    evaluator = Evaluator(set(resources), config.names, account, region)
    evaluated = {
        name: {
            **resource,
            "Properties": evaluator.tree(resource.get("Properties", {}), resource["Type"] == _DASHBOARD),
            "Metadata": evaluator.tree(resource.get("Metadata", {})),
        }
        for name, resource in resources.items()
    }
    outputs = template.get("Outputs", {})
    if not isinstance(outputs, dict):
        refuse(f"its outputs are {shown(repr(outputs))}")
    for name, output in outputs.items():
        only(output, {"Value", "Description"}, f"its output {name}")
    image = serving_image(region, None)
    named = [resource for resource in evaluated.values() if resource["Type"] != _PACKED]
    _require_own_references([named, evaluator.tree(outputs)], account, image.account, image.repository)
    kinds = {name: resource["Type"] for name, resource in resources.items()}
    stage = Stage(config, account, region, evaluator.partition, image, artifact_key, kinds)
    require_shape(evaluated, stage)


def _require_shallow(template: dict[str, Any]) -> None:
    """Refuse a template nested deeper than `_MOST_NESTED` (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(template, 0)]
    while pending:
        value, depth = pending.pop()
        if depth > _MOST_NESTED:
            refuse(f"its serving template nests deeper than {_MOST_NESTED} levels")
        inner = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        pending.extend((item, depth + 1) for item in inner)


def _require_own_references(values: Any, account: str, registry_account: str, repository: str) -> None:
    """Every string of the evaluated `values` names only the stage's account, the
    registry's repository and the stage's bucket (see above)."""
    for value in _strings(values):
        others = set(_ACCOUNT.findall(value)) - {account, registry_account}
        arn = _ARN.match(value)
        if others or (arn and arn.group(1) == registry_account and not value.endswith(f"/{repository}")):
            refuse(f"it names {shown(value)}, outside the stage's account")
        if (value.startswith("s3://") and not value.startswith(f"s3://{BUCKET_NAME}/")) or _S3_ARN.match(value):
            refuse(f"it names {shown(value)}, not the stage's bucket")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def _keys(value: Any) -> Iterator[str]:
    """Every key of every object in `value`: a macro (`Fn::Transform`) rewrites the part
    of the template it stands in (User Guide, "Fn::Transform"), wherever that is."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


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
