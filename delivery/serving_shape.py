"""The shape of a promoted stage's serving stack: the only shape of template a rollback
deploys from a stored assembly (`restorable.py`).

`SHAPE` lists the kinds of resource the stack is made of and the properties the
stacks set on each (tests/delivery/test_serving_shape.py keeps it equal to what
staging and prod synthesize, in each serving kind and artifact form); anything else
is refused. Wherever a property could grant access, send data or run code it must
have the one form the stacks give it: policies attached only to the template's own
roles and granting only the serving role's actions, S3 only in the stage's bucket;
roles only SageMaker may assume, with no managed or inline policies; key and topic
policies letting in only the stage's account and CloudWatch; alarms notifying only
the template's topic, email subscriptions only; autoscaling of the stage's endpoint
alone, under its service-linked role; the stage's endpoint serving a Model of the
template that runs the region's TF Serving image, with no environment but the
default model's name, under the template's role, serving the record's copy in the
stage's bucket; data capture into that bucket. Each check reads the template's
evaluated values (`intrinsics.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from delivery.intrinsics import BUCKET_ARN, BUCKET_NAME, Reference, refuse, shown
from stacks.stage.images import ContainerImage
from stacks.stage.names import StageNames

_TAGGED = frozenset({"Tags"})
SHAPE: dict[str, frozenset[str]] = {
    "AWS::ApplicationAutoScaling::ScalableTarget": _TAGGED
    | {"MaxCapacity", "MinCapacity", "ResourceId", "ScalableDimension", "ServiceNamespace"},
    "AWS::ApplicationAutoScaling::ScalingPolicy": frozenset(
        {"PolicyName", "PolicyType", "ScalingTargetId", "TargetTrackingScalingPolicyConfiguration"}
    ),
    "AWS::CDK::Metadata": frozenset({"Analytics"}),
    "AWS::CloudWatch::Alarm": _TAGGED
    | {"AlarmActions", "AlarmDescription", "AlarmName", "ComparisonOperator", "DatapointsToAlarm", "Dimensions"}
    | {"EvaluationPeriods", "MetricName", "Namespace", "Period", "Statistic", "Threshold", "TreatMissingData"},
    "AWS::CloudWatch::Dashboard": _TAGGED | {"DashboardBody", "DashboardName"},
    "AWS::IAM::Policy": frozenset({"PolicyDocument", "PolicyName", "Roles"}),
    "AWS::IAM::Role": _TAGGED | {"AssumeRolePolicyDocument", "Description"},
    "AWS::KMS::Key": _TAGGED | {"Description", "EnableKeyRotation", "KeyPolicy", "PendingWindowInDays"},
    "AWS::SNS::Subscription": frozenset({"Endpoint", "Protocol", "TopicArn"}),
    "AWS::SNS::Topic": _TAGGED | {"DisplayName", "KmsMasterKeyId"},
    "AWS::SNS::TopicPolicy": frozenset({"PolicyDocument", "Topics"}),
    "AWS::SageMaker::Endpoint": _TAGGED
    | {"DeploymentConfig", "EndpointConfigName", "EndpointName"}
    | {"ExcludeRetainedVariantProperties", "RetainAllVariantProperties"},
    "AWS::SageMaker::EndpointConfig": _TAGGED | {"DataCaptureConfig", "KmsKeyId", "ProductionVariants"},
    "AWS::SageMaker::Model": _TAGGED | {"EnableNetworkIsolation", "ExecutionRoleArn", "PrimaryContainer"},
}
# What the Model's role may do (stacks/serving/model_role.py): read its artifact, pull
# its image, write its logs, metrics and data capture, describe its rollback alarms.
SERVING_ACTIONS = frozenset(
    {"s3:GetObject", "s3:ListBucket", "s3:PutObject", "cloudwatch:DescribeAlarms", "cloudwatch:PutMetricData"}
    | {"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}
    | {"ecr:GetAuthorizationToken", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
)
_ATTRIBUTES = {"Type", "Properties", "DependsOn", "Metadata", "DeletionPolicy", "UpdateReplacePolicy"}
_CONTAINER = {"Image", "Environment", "ModelDataUrl", "ModelDataSource"}
# The TF Serving container pip-installs an artifact's code/requirements.txt (SageMaker
# TensorFlow Serving Container README, "Pre/Post-Processing"), and pip takes its index
# and options from the environment (pip documentation, "Environment Variables"): no
# variable but the one the stacks set.
_ENVIRONMENT = {"SAGEMAKER_TFS_DEFAULT_MODEL_NAME"}
_VARIANT = {"VariantName", "ModelName", "InitialVariantWeight", "InstanceType", "InitialInstanceCount"}
_VARIANT |= {"ServerlessConfig"}
_CAPTURE = {"EnableCapture", "InitialSamplingPercentage", "DestinationS3Uri", "CaptureOptions"}
_DOCUMENT = {"Version", "Statement"}
_IDENTITY_STATEMENT = {"Sid", "Effect", "Action", "Resource", "Condition"}
_CLOUDWATCH = ("Service", "cloudwatch.amazonaws.com")


@dataclass(frozen=True)
class Stage:
    """What a stored template must serve and where: `artifact_key` the record's copy in
    the stage's bucket, `kinds` the template's resources by logical id."""

    names: StageNames
    account: str
    partition: str
    image: ContainerImage
    artifact_key: str
    kinds: dict[str, str]

    def require_own(self, value: Any, kind: str, attribute: str | None, what: str) -> None:
        """Refuse `value` unless it is `Fn::GetAtt` `attribute` (None: `Ref`) of a `kind` of the template."""
        if not (
            isinstance(value, Reference) and value.attribute == attribute and self.kinds.get(value.resource) == kind
        ):
            refuse(f"{what} {shown(str(value))}, which is no {kind} its own stack defines")


def require_kinds(resources: dict[str, Any]) -> None:
    """Only the kinds of resource the serving stack has, with only CloudFormation's attributes it uses."""
    kinds = {str(resource.get("Type")) if isinstance(resource, dict) else "?" for resource in resources.values()}
    if kinds - set(SHAPE):
        refuse(f"its serving stack holds {sorted(kinds - set(SHAPE))}, which no serving stack of a promoted stage has")
    for name, resource in resources.items():
        only(resource, _ATTRIBUTES, f"its resource {name}")


def require_shape(resources: dict[str, Any], stage: Stage) -> None:
    """Each resource of `resources` (evaluated) has the serving stack's shape (above)."""
    if "AWS::SageMaker::Model" not in stage.kinds.values():
        refuse("its serving stack has no SageMaker Model")
    for name, resource in resources.items():
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        only(properties, SHAPE[kind], f"its {kind} {name}")
        check = _CHECKS.get(kind)
        if check:
            check(properties, stage, f"its {kind} {name}")


def _model(model: dict[str, Any], stage: Stage, where: str) -> None:
    stage.require_own(model.get("ExecutionRoleArn"), "AWS::IAM::Role", "Arn", "a Model runs as")
    container = only(model.get("PrimaryContainer"), _CONTAINER, f"the container of {where}")
    only(container.get("Environment", {}), _ENVIRONMENT, f"the container environment of {where}")
    host, _, path = str(container.get("Image")).partition("/")
    if host != stage.image.uri.partition("/")[0] or not path.startswith(f"{stage.image.repository}:"):
        refuse(f"a Model runs the image {container.get('Image')}, not the region's {stage.image.repository}")
    source = container.get("ModelDataSource", {})
    only(source, {"S3DataSource"}, f"the model data of {where}")
    only(source.get("S3DataSource", {}), {"S3Uri", "S3DataType", "CompressionType"}, f"the model data of {where}")
    url, uri = container.get("ModelDataUrl"), source.get("S3DataSource", {}).get("S3Uri")
    artifact = f"s3://{BUCKET_NAME}/{stage.artifact_key}"
    if (url, uri) not in ((artifact, None), (None, artifact)):
        refuse(f"a Model serves {shown(str(url or uri))}, not the record's {stage.artifact_key} in the stage's bucket")


def _endpoint_config(config: dict[str, Any], stage: Stage, where: str) -> None:
    for variant in config.get("ProductionVariants", []):
        only(variant, _VARIANT, f"a variant of {where}")
        stage.require_own(
            variant.get("ModelName"), "AWS::SageMaker::Model", "ModelName", f"a variant of {where} serves"
        )
    if "KmsKeyId" in config:
        stage.require_own(config["KmsKeyId"], "AWS::KMS::Key", "Arn", f"{where} encrypts with")
    if "DataCaptureConfig" in config:
        capture = config["DataCaptureConfig"]
        only(capture, _CAPTURE, f"the data capture of {where}")
        if not str(capture.get("DestinationS3Uri")).startswith(f"s3://{BUCKET_NAME}/"):
            refuse(
                f"{where} captures requests to {shown(str(capture.get('DestinationS3Uri')))}, not the stage's bucket"
            )


def _endpoint(endpoint: dict[str, Any], stage: Stage, where: str) -> None:
    if endpoint.get("EndpointName") != stage.names.endpoint:
        refuse(f"{where} is named {endpoint.get('EndpointName')!r}, not {stage.names.endpoint!r}")
    config = endpoint.get("EndpointConfigName")
    stage.require_own(config, "AWS::SageMaker::EndpointConfig", "EndpointConfigName", f"{where} runs")


def _role(role: dict[str, Any], stage: Stage, where: str) -> None:
    document = role.get("AssumeRolePolicyDocument")
    _statements(document, where, {("Service", "sagemaker.amazonaws.com")}, lambda action: action == "sts:assumerole")


def _policy(policy: dict[str, Any], stage: Stage, where: str) -> None:
    for role in policy.get("Roles", []):
        stage.require_own(role, "AWS::IAM::Role", None, f"{where} is attached to")
    allowed = {action.lower() for action in SERVING_ACTIONS}
    for statement in _statements(policy.get("PolicyDocument"), where, None, allowed.__contains__):
        actions = _listed(statement.get("Action"))
        if statement["Effect"] == "Allow" and any(str(action).lower().startswith("s3:") for action in actions):
            resources = [str(resource) for resource in _listed(statement.get("Resource"))]
            outside = [shown(r) for r in resources if r != BUCKET_ARN and not r.startswith(f"{BUCKET_ARN}/")]
            if outside:
                refuse(f"{where} grants S3 on {outside}, outside the stage's bucket")


def _key(key: dict[str, Any], stage: Stage, where: str) -> None:
    account = ("AWS", f"arn:{stage.partition}:iam::{stage.account}:root")
    _statements(key.get("KeyPolicy"), where, {account, _CLOUDWATCH}, lambda action: action.startswith("kms:"))


def _topic(topic: dict[str, Any], stage: Stage, where: str) -> None:
    stage.require_own(topic.get("KmsMasterKeyId"), "AWS::KMS::Key", "Arn", f"{where} encrypts with")


def _topic_policy(policy: dict[str, Any], stage: Stage, where: str) -> None:
    for topic in policy.get("Topics", []):
        stage.require_own(topic, "AWS::SNS::Topic", None, f"{where} applies to")
    _statements(policy.get("PolicyDocument"), where, {_CLOUDWATCH}, lambda action: action.startswith("sns:"))


def _subscription(subscription: dict[str, Any], stage: Stage, where: str) -> None:
    if subscription.get("Protocol") != "email":
        refuse(f"{where} delivers by {subscription.get('Protocol')!r}, not by email")
    stage.require_own(subscription.get("TopicArn"), "AWS::SNS::Topic", None, f"{where} subscribes to")


def _alarm(alarm: dict[str, Any], stage: Stage, where: str) -> None:
    for action in alarm.get("AlarmActions", []):
        stage.require_own(action, "AWS::SNS::Topic", None, f"{where} notifies")


def _scalable_target(target: dict[str, Any], stage: Stage, where: str) -> None:
    # Without a RoleARN, Application Auto Scaling uses its service-linked role
    # (Application Auto Scaling User Guide, "Service-linked roles").
    resource = f"endpoint/{stage.names.endpoint}/variant/"
    if target.get("ServiceNamespace") != "sagemaker" or not str(target.get("ResourceId")).startswith(resource):
        refuse(f"{where} scales {target.get('ResourceId')!r}, not the stage's endpoint {stage.names.endpoint}")


def _scaling_policy(policy: dict[str, Any], stage: Stage, where: str) -> None:
    target = policy.get("ScalingTargetId")
    stage.require_own(target, "AWS::ApplicationAutoScaling::ScalableTarget", None, f"{where} scales")


_CHECKS: dict[str, Callable[[dict[str, Any], Stage, str], None]] = {
    "AWS::ApplicationAutoScaling::ScalableTarget": _scalable_target,
    "AWS::ApplicationAutoScaling::ScalingPolicy": _scaling_policy,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::IAM::Policy": _policy,
    "AWS::IAM::Role": _role,
    "AWS::KMS::Key": _key,
    "AWS::SNS::Subscription": _subscription,
    "AWS::SNS::Topic": _topic,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::SageMaker::Endpoint": _endpoint,
    "AWS::SageMaker::EndpointConfig": _endpoint_config,
    "AWS::SageMaker::Model": _model,
}


def _statements(
    document: Any, where: str, principals: set[tuple[str, str]] | None, allows: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """The statements of a policy `document`: a resource policy's (`principals` the
    only ones it may let in) or an identity policy's (None); `allows` the actions
    (lowercased: IAM User Guide, "IAM JSON policy elements: Action", action names are
    case-insensitive) it may allow. Deny statements only take away."""
    only(document, _DOCUMENT, f"the policy of {where}")
    statements = _listed(document.get("Statement"))
    keys = _IDENTITY_STATEMENT if principals is None else _IDENTITY_STATEMENT | {"Principal"}
    for statement in statements:
        only(statement, keys, f"a statement of {where}")
        if statement.get("Effect") == "Deny":
            continue
        if statement.get("Effect") != "Allow":
            refuse(f"a statement of {where} has the effect {statement.get('Effect')!r}")
        refused = [action for action in _listed(statement.get("Action")) if not allows(str(action).lower())]
        if refused:
            refuse(f"{where} allows {refused}, which no serving stack's does")
        if principals is None:
            continue
        for kind, value in _principals(statement.get("Principal")):
            if (kind, value) in principals:
                continue
            if kind == "Service":
                refuse(f"it lets {value!r} act, which no serving stack does")
            refuse(f"{where} allows the principal {kind} {shown(str(value))!r}")
    return statements


def _principals(principal: Any) -> list[tuple[str, Any]]:
    """A statement's principals as (kind, value): "*" is ("*", "*")."""
    if not isinstance(principal, dict):
        return [("*", principal)]
    return [(kind, value) for kind, values in principal.items() for value in _listed(values)]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def only(mapping: Any, allowed: set[str] | frozenset[str], where: str) -> dict[str, Any]:
    """`mapping`, refused unless it is an object with no keys but `allowed`."""
    if not isinstance(mapping, dict):
        refuse(f"{where} is {mapping!r}, not an object")
    extra = sorted(set(mapping) - allowed)
    if extra:
        refuse(f"{where} has {extra}, which no serving stack's has")
    return mapping
