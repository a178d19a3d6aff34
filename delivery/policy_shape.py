"""The policies of a stored serving template, each in the one form the stacks give it:
what a rollback may grant (`serving_shape.py` runs these checks on the evaluated
template, `shape_stage.Stage` is what they compare it with).

- a role only SageMaker may assume;
- a policy attached only to the template's own roles, granting each of the Model
  role's actions only on what `stacks/serving/model_role.py` grants it (`grants`):
  its artifact's objects in the stage's bucket (of a prefix, its model version's
  folder and manifest, or the whole prefix as earlier stacks granted), listing only
  them, data capture
  only under the stage's data-capture prefix, the region's TF Serving repository,
  the endpoint's own log group, its rollback alarms; `*` only where the service has
  no resource-level permission, with the condition the stacks put on it;
- a key policy letting in only the stage's account and CloudWatch;
- a topic policy allowing only CloudWatch to publish, from the stage's alarms in
  the stage's account, exactly as `stacks/serving/operations.py` writes it.

Deny statements only take away, so they keep any form a statement may have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from delivery.intrinsics import BUCKET_ARN, refuse, shown
from delivery.shape_stage import Stage, items, listed, only
from stacks.stage.names import DATA_CAPTURE_PREFIX, ENDPOINT_METRICS_NAMESPACE, endpoint_log_group

_DOCUMENT = {"Version", "Statement"}
_IDENTITY_STATEMENT = {"Sid", "Effect", "Action", "Resource", "Condition"}
_CLOUDWATCH = ("Service", "cloudwatch.amazonaws.com")
_SAGEMAKER = ("Service", "sagemaker.amazonaws.com")
# A condition as compared: operator, then key, then its values in order.
Condition = dict[str, dict[str, list[Any]]]


def grants(stage: Stage) -> dict[str, tuple[set[str], Condition]]:
    """Each action the Model's role may be allowed, the resources it may be allowed on,
    and the condition it must carry (`stacks/serving/model_role.py`,
    `stacks/sagemaker_access.py`)."""
    artifact = stage.artifact_pattern
    logs = stage.arn("logs", f"log-group:{endpoint_log_group(stage.names.endpoint)}")
    streams = {f"{logs}:log-stream:*"}
    pull = {stage.image.repository_arn(stage.partition)}
    alarms = {stage.arn("cloudwatch", f"alarm:{name}") for name in stage.config.alarm_names}
    return {
        "s3:GetObject": ({f"{BUCKET_ARN}/{objects}" for objects in stage.artifact_objects}, {}),
        "s3:ListBucket": ({BUCKET_ARN}, {"StringLike": {"s3:prefix": [artifact]}}),
        "s3:PutObject": ({f"{BUCKET_ARN}/{DATA_CAPTURE_PREFIX}*"}, {}),
        "ecr:BatchCheckLayerAvailability": (pull, {}),
        "ecr:BatchGetImage": (pull, {}),
        "ecr:GetDownloadUrlForLayer": (pull, {}),
        # Neither has resource-level permissions (Service Authorization Reference,
        # "Actions defined by Amazon ECR" and "... by Amazon CloudWatch"): `*` is the
        # only resource they take; PutMetricData keeps to SageMaker's namespace.
        "ecr:GetAuthorizationToken": ({"*"}, {}),
        "cloudwatch:PutMetricData": ({"*"}, {"StringEquals": {"cloudwatch:namespace": [ENDPOINT_METRICS_NAMESPACE]}}),
        "cloudwatch:DescribeAlarms": (alarms, {}),
        "logs:CreateLogGroup": ({logs}, {}),
        "logs:CreateLogStream": (streams, {}),
        "logs:PutLogEvents": (streams, {}),
    }


def role(properties: dict[str, Any], stage: Stage, where: str) -> None:
    document = properties.get("AssumeRolePolicyDocument")
    _statements(document, where, {_SAGEMAKER}, lambda action: action == "sts:assumerole")


def policy(properties: dict[str, Any], stage: Stage, where: str) -> None:
    for attached in items(properties.get("Roles"), f"the roles of {where}"):
        stage.require_own(attached, "AWS::IAM::Role", None, f"{where} is attached to")
    granted = {action.lower(): grant for action, grant in grants(stage).items()}
    for statement in _statements(properties.get("PolicyDocument"), where, None, granted.__contains__):
        if statement["Effect"] != "Allow":
            continue
        for action in listed(statement["Action"]):
            resources, condition = granted[action.lower()]
            resources_of = listed(statement.get("Resource"))
            outside = [r for r in resources_of if not (isinstance(r, str) and r in resources)]
            if outside:
                refuse(f"{where} grants {action} on {shown(repr(outside))}, not on what the stacks grant it")
            if not _holds(statement.get("Condition", {}), condition):
                refuse(f"{where} grants {action} without the condition {condition}")


# What the alarm topic's key lets CloudWatch do (stacks/serving/operations.py): encrypt
# a notification for the topic, nothing else.
_CLOUDWATCH_KEY_ACTIONS = {"kms:decrypt", "kms:generatedatakey*"}


def key(properties: dict[str, Any], stage: Stage, where: str) -> None:
    account = ("AWS", f"arn:{stage.partition}:iam::{stage.account}:root")
    statements = _statements(
        properties.get("KeyPolicy"), where, {account, _CLOUDWATCH}, lambda action: action.startswith("kms:")
    )
    for statement in statements:
        if statement["Effect"] != "Allow" or _CLOUDWATCH not in _principals(statement.get("Principal")):
            continue
        extra = sorted({action.lower() for action in listed(statement.get("Action"))} - _CLOUDWATCH_KEY_ACTIONS)
        if extra:
            refuse(f"{where} lets CloudWatch {shown(repr(extra))}, beyond encrypting the alarms' notifications")


def topic_policy(properties: dict[str, Any], stage: Stage, where: str) -> None:
    for topic in items(properties.get("Topics"), f"the topics of {where}"):
        stage.require_own(topic, "AWS::SNS::Topic", None, f"{where} applies to")
    alarms = [stage.arn("cloudwatch", f"alarm:{name}") for name in stage.config.alarm_names]
    publish: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": ["cloudwatch.amazonaws.com"]},
        "Action": ["sns:publish"],
        "Condition": {"ArnLike": {"aws:SourceArn": alarms}, "StringEquals": {"aws:SourceAccount": [stage.account]}},
    }
    statements = _statements(properties.get("PolicyDocument"), where, {_CLOUDWATCH}, "sns:publish".__eq__)
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        resources = listed(statement.get("Resource"))
        resource = resources[0] if len(resources) == 1 else resources
        stage.require_own(resource, "AWS::SNS::Topic", None, f"{where} lets CloudWatch publish to")
        if _compared(statement) != _compared(publish):
            refuse(f"{where} lets CloudWatch publish otherwise than from the stage's alarms in its account")


def _statements(
    document: Any, where: str, principals: set[tuple[str, str]] | None, allows: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """The statements of a policy `document`: a resource policy's (`principals` the
    only ones it may let in) or an identity policy's (None); `allows` the actions
    (lowercased: IAM User Guide, "IAM JSON policy elements: Action", action names are
    case-insensitive) it may allow. Deny statements only take away."""
    only(document, _DOCUMENT, f"the policy of {where}")
    statements = listed(document.get("Statement"))
    keys = _IDENTITY_STATEMENT if principals is None else _IDENTITY_STATEMENT | {"Principal"}
    for statement in statements:
        only(statement, keys, f"a statement of {where}")
        if statement.get("Effect") == "Deny":
            continue
        if statement.get("Effect") != "Allow":
            refuse(f"a statement of {where} has the effect {shown(repr(statement.get('Effect')))}")
        actions = listed(statement.get("Action"))
        refused = [a for a in actions if not (isinstance(a, str) and allows(a.lower()))]
        if refused:
            refuse(f"{where} allows {shown(repr(refused))}, which no serving stack's does")
        if principals is None:
            continue
        for kind, value in _principals(statement.get("Principal")):
            if (kind, value) in principals:
                continue
            if kind == "Service":
                refuse(f"it lets {shown(repr(value))} act, which no serving stack does")
            refuse(f"{where} allows the principal {kind} {shown(str(value))!r}")
    return statements


def _principals(principal: Any) -> list[tuple[str, str]]:
    """A statement's principals as (kind, value): "*" is ("*", "*"); none, or a value
    that is no string, is refused."""
    if not isinstance(principal, dict):
        principal = {"*": principal}
    pairs = [(kind, value) for kind, values in principal.items() for value in listed(values)]
    if not pairs:
        refuse(f"a statement lets in no principal ({shown(repr(principal))})")
    for kind, value in pairs:
        if not isinstance(value, str):
            refuse(f"a statement lets in the principal {kind} {shown(repr(value))}, which is no name")
    return pairs


def _holds(condition: Any, required: Condition) -> bool:
    """Whether `condition` requires at least `required`: whatever else it requires
    only narrows an Allow (IAM User Guide, "Condition": all of a statement's
    conditions must hold)."""
    found = _normal(condition)
    return all(
        isinstance(found, dict) and isinstance(found.get(operator), dict) and found[operator].get(name) == values
        for operator, names in _normal(required).items()
        for name, values in names.items()
    )


def _compared(statement: dict[str, Any]) -> dict[str, Any]:
    """A resource policy's statement as compared: no Sid nor Resource, actions
    lowercased, each principal's and condition's values a sorted list."""
    return {
        "Effect": statement.get("Effect"),
        "Principal": _normal(statement.get("Principal")),
        "Action": sorted(str(a).lower() for a in listed(statement.get("Action"))),
        "Condition": _normal(statement.get("Condition")),
    }


def _normal(block: Any) -> Any:
    """A Principal or Condition block with its values as sorted lists (a value and a
    list of it mean the same); any other shape as it is."""
    if not isinstance(block, dict):
        return block
    return {
        name: _normal(inner) if isinstance(inner, dict) else sorted(listed(inner), key=repr)
        for name, inner in block.items()
    }
