"""The shape of a promoted stage's serving stack: the only shape of template a rollback
deploys from a stored assembly (`restorable.py`).

`SHAPE` lists the kinds of resource the stack is made of and the properties the
stacks set on each (tests/delivery/test_serving_shape.py keeps it equal to what
staging and prod synthesize, in each serving kind and artifact form); anything else
is refused. Wherever a property could grant access, send data, run code or cost
money it must have the one form the stacks give it, for the stage as this
checkout's config has it (`shape_stage.Stage`): policies as `policy_shape.py`
checks them; alarms notifying only the template's topic, whose subscriptions mail
only the config's alarm e-mails; tags only the config's; autoscaling of the stage's
endpoint alone, under its service-linked role; the stage's endpoint serving a Model
of the template that runs the region's TF Serving image, network-isolated on
instances, with no environment but the default model's name, under the template's
role, serving the record's copy in the stage's bucket; data capture only under the
stage's data-capture prefix; and no more capacity than the config pays for (below).
Each check reads the template's evaluated values (`intrinsics.py`), and refuses a
value of any other type.

Capacity: a rollback restores the infrastructure that served with an artifact, not
its size. An instance variant runs the config's instance type, and neither it nor
autoscaling runs more instances than the config lets the stage run (its count, or
its autoscaling maximum); a serverless variant has at most the config's memory and
concurrency, and no provisioned concurrency; a template serving the other way than
the config (instances or serverless) is refused. To restore a template of another
size, roll back from a checkout whose config gives the stage that size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from delivery import policy_shape
from delivery.intrinsics import BUCKET_NAME, refuse, shown
from delivery.shape_stage import Stage, items, only, whole
from stacks.stage.names import DATA_CAPTURE_PREFIX
from stacks.stage.schema import ServerlessServing

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
_ATTRIBUTES = {"Type", "Properties", "DependsOn", "Metadata", "DeletionPolicy", "UpdateReplacePolicy"}
_CONTAINER = {"Image", "Environment", "ModelDataUrl", "ModelDataSource"}
# The TF Serving container pip-installs an artifact's code/requirements.txt (SageMaker
# TensorFlow Serving Container README, "Pre/Post-Processing"), and pip takes its index
# and options from the environment (pip documentation, "Environment Variables"): no
# variable but the one the stacks set.
_ENVIRONMENT = {"SAGEMAKER_TFS_DEFAULT_MODEL_NAME"}
_VARIANT = {"VariantName", "ModelName", "InitialVariantWeight", "InstanceType", "InitialInstanceCount"}
_VARIANT |= {"ServerlessConfig"}
# No ProvisionedConcurrency: it is billed whether the endpoint is called or not
# (SageMaker Developer Guide, "Serverless Inference": provisioned concurrency).
_SERVERLESS = {"MemorySizeInMB", "MaxConcurrency"}
_INSTANCES = {"InstanceType", "InitialInstanceCount"}
_CAPTURE = {"EnableCapture", "InitialSamplingPercentage", "DestinationS3Uri", "CaptureOptions"}
_SCALED = "sagemaker:variant:DesiredInstanceCount"


def require_kinds(resources: dict[str, Any]) -> None:
    """Only the kinds of resource the serving stack has, with only CloudFormation's attributes it uses."""
    kinds = {str(resource.get("Type")) if isinstance(resource, dict) else "?" for resource in resources.values()}
    if kinds - set(SHAPE):
        refuse(f"its serving stack holds {sorted(kinds - set(SHAPE))}, which no serving stack of a promoted stage has")
    for name, resource in resources.items():
        only(resource, _ATTRIBUTES, f"its resource {name}")
        # A retained resource outlives `cdk destroy` and goes on billing (an endpoint's
        # instances); the stacks let CloudFormation delete every serving resource.
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            if resource.get(policy, "Delete") != "Delete":
                refuse(f"its resource {name} has {policy} {shown(repr(resource[policy]))}; the stacks' is Delete")


def require_shape(resources: dict[str, Any], stage: Stage) -> None:
    """Each resource of `resources` (evaluated) has the serving stack's shape (above)."""
    if "AWS::SageMaker::Model" not in stage.kinds.values():
        refuse("its serving stack has no SageMaker Model")
    for name, resource in resources.items():
        kind = resource["Type"]
        where = f"its {kind} {name}"
        properties = only(resource.get("Properties", {}), SHAPE[kind], where)
        if "Tags" in properties:
            _tags(properties["Tags"], stage, where)
        check = _CHECKS.get(kind)
        if check:
            check(properties, stage, where)


def _tags(tags: Any, stage: Stage, where: str) -> None:
    # A tag can grant access: IAM policies may allow by a principal's or a resource's
    # tags (IAM User Guide, "Controlling access to AWS resources using tags").
    allowed = dict(stage.config.resource_tags)
    for tag in items(tags, f"the tags of {where}"):
        only(tag, {"Key", "Value"}, f"a tag of {where}")
        key, value = tag.get("Key"), tag.get("Value")
        if not isinstance(key, str) or allowed.get(key) != value:
            refuse(
                f"{where} is tagged {shown(repr(key))}: {shown(repr(value))}, which this checkout's config "
                f"does not tag {stage.names.stage}'s resources with"
            )


def _metadata(metadata: dict[str, Any], stage: Stage, where: str) -> None:
    if not isinstance(metadata.get("Analytics"), str):
        refuse(f"{where} reports {shown(repr(metadata.get('Analytics')))}, not CDK's packed text")


def _model(model: dict[str, Any], stage: Stage, where: str) -> None:
    stage.require_own(model.get("ExecutionRoleArn"), "AWS::IAM::Role", "Arn", "a Model runs as")
    # On instances the stacks isolate the container from the network, so nothing it
    # runs can send data out; serverless endpoints do not support isolation
    # (SageMaker Developer Guide, "Serverless Inference": feature exclusions), and
    # the stacks write false (`stacks/serving/endpoint.py`).
    isolated = stage.instances is not None
    if model.get("EnableNetworkIsolation") is not isolated:
        refuse(
            f"{where} has network isolation {shown(repr(model.get('EnableNetworkIsolation')))}, not {isolated} "
            f"as the stacks give a Model {'on instances' if isolated else 'serverless'}"
        )
    container = only(model.get("PrimaryContainer"), _CONTAINER, f"the container of {where}")
    only(container.get("Environment", {}), _ENVIRONMENT, f"the container environment of {where}")
    image = container.get("Image")
    host, _, path = image.partition("/") if isinstance(image, str) else ("", "", "")
    if host != stage.image.uri.partition("/")[0] or not path.startswith(f"{stage.image.repository}:"):
        refuse(f"a Model runs the image {shown(repr(image))}, not the region's {stage.image.repository}")
    source = only(container.get("ModelDataSource", {}), {"S3DataSource"}, f"the model data of {where}")
    s3 = only(source.get("S3DataSource", {}), {"S3Uri", "S3DataType", "CompressionType"}, f"the model data of {where}")
    url, uri = container.get("ModelDataUrl"), s3.get("S3Uri")
    artifact = f"s3://{BUCKET_NAME}/{stage.artifact_key}"
    if (url, uri) not in ((artifact, None), (None, artifact)):
        refuse(f"a Model serves {shown(str(url or uri))}, not the record's {stage.artifact_key} in the stage's bucket")


def _endpoint_config(config: dict[str, Any], stage: Stage, where: str) -> None:
    for variant in items(config.get("ProductionVariants"), f"the variants of {where}"):
        only(variant, _VARIANT, f"a variant of {where}")
        stage.require_own(
            variant.get("ModelName"), "AWS::SageMaker::Model", "ModelName", f"a variant of {where} serves"
        )
        _capacity(variant, stage, f"a variant of {where}")
    if "KmsKeyId" in config:
        stage.require_own(config["KmsKeyId"], "AWS::KMS::Key", "Arn", f"{where} encrypts with")
    if "DataCaptureConfig" in config:
        capture = only(config["DataCaptureConfig"], _CAPTURE, f"the data capture of {where}")
        destination = capture.get("DestinationS3Uri")
        if not (isinstance(destination, str) and destination.startswith(f"s3://{BUCKET_NAME}/{DATA_CAPTURE_PREFIX}")):
            refuse(
                f"{where} captures requests to {shown(repr(destination))}, not under the stage's {DATA_CAPTURE_PREFIX}"
            )


# What an operator does when the record served another shape than this checkout's config.
_OTHER_CHECKOUT = " (to restore it, roll back from a checkout of the record's commit, whose cdk.json gives that)"


def _capacity(variant: dict[str, Any], stage: Stage, where: str) -> None:
    """`variant` pays for no more than this checkout's config gives the stage (above)."""
    serving = stage.config.serving
    if isinstance(serving, ServerlessServing):
        if "ServerlessConfig" not in variant or _INSTANCES & set(variant):
            refuse(
                f"{where} runs on instances; this checkout's config serves {stage.names.stage} serverless"
                f"{_OTHER_CHECKOUT}"
            )
        limits = only(variant["ServerlessConfig"], _SERVERLESS, f"the serverless config of {where}")
        whole(limits.get("MemorySizeInMB"), f"the memory of {where}", serving.memory_mb)
        whole(limits.get("MaxConcurrency"), f"the concurrency of {where}", serving.max_concurrency)
        return
    if "ServerlessConfig" in variant or variant.get("InstanceType") != serving.instance_type:
        runs = "serverless" if "ServerlessConfig" in variant else shown(repr(variant.get("InstanceType")))
        refuse(
            f"{where} runs {runs}; this checkout's config runs {stage.names.stage} on {serving.instance_type}"
            f"{_OTHER_CHECKOUT}"
        )
    whole(variant.get("InitialInstanceCount"), f"the instance count of {where}", stage.most_instances)


def _endpoint(endpoint: dict[str, Any], stage: Stage, where: str) -> None:
    if endpoint.get("EndpointName") != stage.names.endpoint:
        refuse(f"{where} is named {shown(repr(endpoint.get('EndpointName')))}, not {stage.names.endpoint!r}")
    config = endpoint.get("EndpointConfigName")
    stage.require_own(config, "AWS::SageMaker::EndpointConfig", "EndpointConfigName", f"{where} runs")


def _topic(topic: dict[str, Any], stage: Stage, where: str) -> None:
    stage.require_own(topic.get("KmsMasterKeyId"), "AWS::KMS::Key", "Arn", f"{where} encrypts with")


def _subscription(subscription: dict[str, Any], stage: Stage, where: str) -> None:
    if subscription.get("Protocol") != "email":
        refuse(f"{where} delivers by {shown(repr(subscription.get('Protocol')))}, not by email")
    alarms = stage.config.alarms
    address = subscription.get("Endpoint")
    if address not in (alarms.emails if alarms else ()):
        refuse(
            f"{where} mails {shown(repr(address))}, which this checkout's config does not name "
            f"among {stage.names.stage}'s alarm e-mails"
        )
    stage.require_own(subscription.get("TopicArn"), "AWS::SNS::Topic", None, f"{where} subscribes to")


def _alarm(alarm: dict[str, Any], stage: Stage, where: str) -> None:
    for action in items(alarm.get("AlarmActions", []), f"the actions of {where}"):
        stage.require_own(action, "AWS::SNS::Topic", None, f"{where} notifies")


def _scalable_target(target: dict[str, Any], stage: Stage, where: str) -> None:
    # Without a RoleARN, Application Auto Scaling uses its service-linked role
    # (Application Auto Scaling User Guide, "Service-linked roles").
    resource = f"endpoint/{stage.names.endpoint}/variant/"
    if target.get("ServiceNamespace") != "sagemaker" or not str(target.get("ResourceId")).startswith(resource):
        refuse(
            f"{where} scales {shown(repr(target.get('ResourceId')))}, not the stage's endpoint {stage.names.endpoint}"
        )
    if target.get("ScalableDimension") != _SCALED or stage.instances is None:
        refuse(
            f"{where} scales {shown(repr(target.get('ScalableDimension')))}; this checkout's config scales "
            f"{stage.names.stage} by no more than {_SCALED if stage.instances else 'serverless concurrency'}"
        )
    whole(target.get("MaxCapacity"), f"the most instances of {where}", stage.most_instances)
    whole(target.get("MinCapacity"), f"the fewest instances of {where}", stage.most_instances)


def _scaling_policy(policy: dict[str, Any], stage: Stage, where: str) -> None:
    target = policy.get("ScalingTargetId")
    stage.require_own(target, "AWS::ApplicationAutoScaling::ScalableTarget", None, f"{where} scales")


_CHECKS: dict[str, Callable[[dict[str, Any], Stage, str], None]] = {
    "AWS::ApplicationAutoScaling::ScalableTarget": _scalable_target,
    "AWS::ApplicationAutoScaling::ScalingPolicy": _scaling_policy,
    "AWS::CDK::Metadata": _metadata,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::IAM::Policy": policy_shape.policy,
    "AWS::IAM::Role": policy_shape.role,
    "AWS::KMS::Key": policy_shape.key,
    "AWS::SNS::Subscription": _subscription,
    "AWS::SNS::Topic": _topic,
    "AWS::SNS::TopicPolicy": policy_shape.topic_policy,
    "AWS::SageMaker::Endpoint": _endpoint,
    "AWS::SageMaker::EndpointConfig": _endpoint_config,
    "AWS::SageMaker::Model": _model,
}
