"""The serving stack's shape, the only one a rollback deploys from a stored template:
what staging and prod synthesize (each serving kind, artifact form, alarm, autoscaling,
data capture and region setting) passes, and equals the allow-list; a template whose
policies, principals, alarms, subscriptions, tags, endpoint or data reach anything
else is refused, however its values are built. (Capacity: `test_serving_shape_size.py`;
values of another type: `test_serving_shape_types.py`.)"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from delivery.artifacts import PromotionError
from delivery.policy_shape import grants
from delivery.restorable import require_restorable, template_of
from delivery.serving_shape import SHAPE
from delivery.shape_stage import Stage
from stacks.stage.images import serving_image
from stacks.stage.names import StageNames
from tests.delivery.shape_variants import (
    ACCOUNTS,
    TARGET,
    VARIANTS,
    added,
    checkout_config,
    properties_of,
    updated,
)
from tests.delivery.world import PINNED, REGION

STAGING = StageNames("tfhub-serving", "staging")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_of_a_promoted_stage_may_be_restored(variants, variant):
    stage, key, _, shows = VARIANTS[variant]
    template, config = variants[variant]
    assert all(part in json.dumps(template) for part in shows)
    require_restorable(template, config, config.region, ACCOUNTS[stage], key)


def test_the_shape_is_exactly_what_the_promoted_stages_synthesize(synthesized, variants):
    templates = [synthesized(stage).serving.to_json() for stage in ACCOUNTS] + [t for t, _ in variants.values()]
    # The CDK CLI adds its version-reporting resource; an in-process synth does not.
    used: dict[str, set[str]] = {"AWS::CDK::Metadata": {"Analytics"}}
    actions: set[str] = set()
    for template in templates:
        for resource in template["Resources"].values():
            used.setdefault(resource["Type"], set()).update(resource.get("Properties", {}))
            if resource["Type"] == "AWS::IAM::Policy":
                for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                    actions.update(
                        statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    )
    assert used == SHAPE
    stage = Stage(
        checkout_config("staging"), ACCOUNTS["staging"], REGION, "aws", serving_image(REGION, None), PINNED, {}
    )
    assert actions == set(grants(stage))


def _statement(kind: str, document: str, **statement) -> Callable[[dict], None]:
    return lambda template: properties_of(template, kind)[document]["Statement"].append(
        {"Effect": "Allow", **statement}
    )


def _grant(**statement) -> Callable[[dict], None]:
    return _statement("AWS::IAM::Policy", "PolicyDocument", **statement)


def _container(**changes) -> Callable[[dict], None]:
    return lambda template: properties_of(template, "AWS::SageMaker::Model")["PrimaryContainer"].update(changes)


def _alarms(**changes) -> Callable[[dict], None]:
    def change(template: dict) -> None:
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                resource["Properties"].update(changes)

    return change


def _trust(principal: Any) -> dict:
    return {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}


def _joined(export: str, tail: str) -> dict:
    return {"Fn::Join": ["", [*(["s3://"] if export == BUCKET_NAME else []), {"Fn::ImportValue": export}, tail]]}


def _publish(change: Callable[[dict], Any]) -> Callable[[dict], None]:
    """`change` made to the topic policy's statement that lets CloudWatch publish."""
    return lambda template: change(properties_of(template, "AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"][1])


BUCKET_NAME, BUCKET_ARN = "tfhub-serving-staging-bucket-name", "tfhub-serving-staging-bucket-arn"
OBJECTS = _joined(BUCKET_ARN, "/*")
TOPIC = {"Ref": "TfServingAlarmsTopicA884F505"}
ADMIN = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
SAGEMAKER = _trust({"Service": "sagemaker.amazonaws.com"})
OWN_ROLE = {"Ref": "ModelRole997FC3A9"}
ROOT = "arn:aws:iam::222222222222:root"
OTHER_ROLE = "arn:aws:iam::222222222222:role/x"
SPLIT = {"Fn::Join": ["", ["arn:aws:iam::", "111111", "111111", ":root"]]}
SUBSTITUTED = {"Fn::Sub": ["arn:aws:iam::${A}${B}:root", {"A": "111111", "B": "111111"}]}
LOCATION = {"Fn::Join": ["", ["s3://", {"Fn::ImportValue": "tfhub-serving-staging-bucket-name"}, f"/{PINNED}"]]}
FOREIGN = "names arn:aws:iam::111111111111:root, outside the stage's account"

REFUSED = {
    # The audit's: a policy on a role or user by name, a trust or a bucket built in pieces.
    "policy-on-a-role-by-name": (
        added("AWS::IAM::Policy", PolicyName="p", Roles=["tfhub-serving-staging-storage-PromotionRoleABC"]),
        "attached to tfhub-serving-staging-storage-PromotionRoleABC, which is no AWS::IAM::Role",
    ),
    "policy-on-a-user": (added("AWS::IAM::Policy", PolicyName="p", Users=["mallory"]), r"has \['Users'\]"),
    "trust-split-in-a-join": (added("AWS::IAM::Role", AssumeRolePolicyDocument=_trust({"AWS": SPLIT})), FOREIGN),
    "trust-sub-variable-map": (added("AWS::IAM::Role", AssumeRolePolicyDocument=_trust({"AWS": SUBSTITUTED})), FOREIGN),
    "capture-to-a-joined-bucket": (
        updated(
            "AWS::SageMaker::EndpointConfig",
            DataCaptureConfig={"DestinationS3Uri": {"Fn::Join": ["", ["s3://", "attacker-bucket/cap"]]}},
        ),
        "names s3://attacker-bucket/cap, not the stage's bucket",
    ),
    # Roles: SageMaker's only, no managed or inline policies; policies only on them.
    "admin-on-its-own-role": (
        added("AWS::IAM::Policy", PolicyName="p", Roles=[OWN_ROLE], PolicyDocument=ADMIN),
        r"allows \['\*'\]",
    ),
    "managed-admin": (
        added(
            "AWS::IAM::Role",
            AssumeRolePolicyDocument=SAGEMAKER,
            ManagedPolicyArns=["arn:aws:iam::aws:policy/AdministratorAccess"],
        ),
        r"has \['ManagedPolicyArns'\]",
    ),
    "inline-policy": (
        added(
            "AWS::IAM::Role",
            AssumeRolePolicyDocument=SAGEMAKER,
            Policies=[{"PolicyName": "p", "PolicyDocument": ADMIN}],
        ),
        r"has \['Policies'\]",
    ),
    "trust-own-account": (
        added("AWS::IAM::Role", AssumeRolePolicyDocument=_trust({"AWS": ROOT})),
        f"allows the principal AWS '{ROOT}'",
    ),
    # Policies: the serving role's actions (in any case), S3 in the stage's bucket only.
    "iam-action": (_grant(Action="iam:PassRole", Resource="*"), r"allows \['iam:PassRole'\]"),
    "action-wildcard": (
        _grant(Action="s3:*", Resource={"Fn::ImportValue": "tfhub-serving-staging-bucket-arn"}),
        r"allows \['s3:\*'\]",
    ),
    "not-action": (_grant(NotAction="s3:GetObject", Resource="*"), r"has \['NotAction'\]"),
    "s3-everywhere": (_grant(Action="S3:GetObject", Resource="*"), r"grants S3:GetObject on \['\*'\]"),
    "s3-arn-literal": (
        _grant(Action="s3:GetObject", Resource="arn:aws:s3:::attacker/*"),
        r"names arn:aws:s3:::attacker/\*, not",
    ),
    # Key and topic policies: the stage's account and CloudWatch only.
    "key-to-a-role": (
        _statement("AWS::KMS::Key", "KeyPolicy", Principal={"AWS": OTHER_ROLE}, Action="kms:Decrypt", Resource="*"),
        f"allows the principal AWS '{OTHER_ROLE}'",
    ),
    "topic-to-anyone": (
        _statement("AWS::SNS::TopicPolicy", "PolicyDocument", Principal="*", Action="sns:Publish", Resource="*"),
        "allows the principal",
    ),
    # Alarms tell the stack's topic; subscriptions are emails to it.
    "alarm-action": (
        _alarms(AlarmActions=["arn:aws:automate:eu-west-1:ec2:terminate"]),
        "notifies arn:aws:automate:eu-west-1:ec2:terminate, which is no AWS::SNS::Topic",
    ),
    "ok-action": (_alarms(OKActions=[]), r"has \['OKActions'\]"),
    "subscription-https": (
        added(
            "AWS::SNS::Subscription",
            Protocol="https",
            Endpoint="https://x.example",
            TopicArn=TOPIC,
        ),
        "delivers by 'https', not by email",
    ),
    # Autoscaling of the stage's endpoint only, under its service-linked role.
    "scale-another-endpoint": (
        added("AWS::ApplicationAutoScaling::ScalableTarget", ResourceId="endpoint/other/variant/AllTraffic", **TARGET),
        "scales 'endpoint/other/variant/AllTraffic'",
    ),
    "scaling-role": (added("AWS::ApplicationAutoScaling::ScalableTarget", RoleARN=OTHER_ROLE), r"has \['RoleARN'\]"),
    # The stage's endpoint serving the stack's Model, whose environment is the model's name only.
    "endpoint-name": (
        updated("AWS::SageMaker::Endpoint", EndpointName="tfhub-serving-other"),
        "is named 'tfhub-serving-other'",
    ),
    "variant-model": (
        lambda t: properties_of(t, "AWS::SageMaker::EndpointConfig")["ProductionVariants"][0].update(
            ModelName="other-model"
        ),
        "serves other-model, which is no AWS::SageMaker::Model",
    ),
    "shadow-variants": (
        updated("AWS::SageMaker::EndpointConfig", ShadowProductionVariants=[]),
        r"has \['ShadowProductionVariants'\]",
    ),
    "pip-index": (_container(Environment={"PIP_INDEX_URL": "https://x.example/simple"}), r"has \['PIP_INDEX_URL'\]"),
    "data-source-bucket": (
        _container(ModelDataSource={"S3DataSource": {"S3Uri": f"s3://other-bucket/{PINNED}"}}),
        f"names s3://other-bucket/{PINNED}, not the stage's bucket",
    ),
    "two-data-sources": (_container(ModelDataSource={"S3DataSource": {"S3Uri": LOCATION}}), "a Model serves"),
    # A macro rewrites the part it stands in, even where CloudFormation deploys nothing.
    "transform-in-metadata": (
        lambda t: next(iter(t["Resources"].values())).update(Metadata={"Fn::Transform": {"Name": "M"}}),
        "uses Fn::Transform",
    ),
    "output-export": (lambda t: t["Outputs"]["EndpointName"].update(Export={"Name": "x"}), r"has \['Export'\]"),
    # Each grant of the Model's role only on what the stacks grant it, with their conditions.
    "s3-whole-bucket": (
        _grant(Action=["s3:GetObject", "s3:PutObject"], Resource=OBJECTS),
        r"grants s3:GetObject on \['<stage bucket ARN>/\*'\]",
    ),
    "put-beside-the-artifact": (
        _grant(Action="s3:PutObject", Resource=_joined(BUCKET_ARN, f"/{PINNED}")),
        r"grants s3:PutObject on \['<stage bucket ARN>/artifacts/",
    ),
    "list-every-prefix": (
        _grant(
            Action="s3:ListBucket",
            Resource={"Fn::ImportValue": BUCKET_ARN},
            Condition={"StringLike": {"s3:prefix": ["*"]}},
        ),
        "grants s3:ListBucket without the condition",
    ),
    "pull-any-image": (_grant(Action="ecr:BatchGetImage", Resource="*"), r"grants ecr:BatchGetImage on \['\*'\]"),
    "write-any-log": (_grant(Action="logs:PutLogEvents", Resource="*"), r"grants logs:PutLogEvents on \['\*'\]"),
    "metrics-anywhere": (
        _grant(Action="cloudwatch:PutMetricData", Resource="*"),
        "grants cloudwatch:PutMetricData without the condition",
    ),
    "describe-every-alarm": (
        _grant(Action="cloudwatch:DescribeAlarms", Resource="*"),
        r"grants cloudwatch:DescribeAlarms on \['\*'\]",
    ),
    # The topic's policy: CloudWatch publishing from the stage's alarms in its account, exactly.
    "topic-publish-unconditioned": (_publish(lambda s: s.pop("Condition")), "lets CloudWatch publish otherwise"),
    "topic-publish-other-alarms": (
        _publish(lambda s: s["Condition"]["ArnLike"].update({"aws:SourceArn": "arn:aws:cloudwatch:*"})),
        "lets CloudWatch publish otherwise",
    ),
    "topic-every-action": (_publish(lambda s: s.update(Action="sns:*", Resource="*")), r"allows \['sns:\*'\]"),
    # Data: isolated on instances, captured only under the data-capture prefix, mailed only to the config's.
    "isolation-off": (updated("AWS::SageMaker::Model", EnableNetworkIsolation=False), "network isolation False"),
    "isolation-left-out": (
        lambda t: properties_of(t, "AWS::SageMaker::Model").pop("EnableNetworkIsolation"),
        "isolation None",
    ),
    "capture-into-the-artifacts": (
        updated("AWS::SageMaker::EndpointConfig", DataCaptureConfig={"DestinationS3Uri": _joined(BUCKET_NAME, "/a/")}),
        "captures requests to 's3://<stage bucket>/a/', not under the stage's datacapture/",
    ),
    "mail-an-address-not-configured": (
        added("AWS::SNS::Subscription", Protocol="email", Endpoint="m@x.example", TopicArn=TOPIC),
        "mails 'm@x.example', which this checkout's config does not name among staging's alarm e-mails",
    ),
    "tag-the-role": (
        lambda t: properties_of(t, "AWS::IAM::Role")["Tags"].append({"Key": "team", "Value": "admin"}),
        "is tagged 'team': 'admin', which this checkout's config does not tag staging's resources with",
    ),
    # What CloudFormation evaluates, CDK's version report and resource metadata included.
    "version-report-imports": (
        added("AWS::CDK::Metadata", Analytics={"Fn::ImportValue": "other-export"}),
        "imports 'other-export'",
    ),
    "metadata-imports": (
        lambda t: t["Resources"]["ModelRole997FC3A9"].update(Metadata={"x": {"Fn::ImportValue": "other-export"}}),
        "imports 'other-export'",
    ),
    # One of a list is no list: a refusal, not a TypeError.
    "alarm-actions-one": (_alarms(AlarmActions=TOPIC), "the actions of .* is Reference.*, not a list"),
    "policy-roles-one": (updated("AWS::IAM::Policy", Roles=OWN_ROLE), "the roles of .* not a list"),
    "topic-policy-topics-one": (updated("AWS::SNS::TopicPolicy", Topics=TOPIC), "the topics of .* not a list"),
}


@pytest.mark.parametrize(("change", "refusal"), REFUSED.values(), ids=REFUSED.keys())
def test_a_template_of_any_other_shape_is_refused(synthesized, change, refusal):
    template = copy.deepcopy(template_of(synthesized("staging").outdir, STAGING))
    change(template)
    with pytest.raises(PromotionError, match=f"not one a rollback may deploy: .*{refusal}"):
        require_restorable(template, checkout_config("staging"), REGION, ACCOUNTS["staging"], PINNED)
