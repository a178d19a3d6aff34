"""The serving stack's shape, the only one a rollback deploys from a stored template:
what staging and prod synthesize (each serving kind, artifact form and alarm setting)
passes, and equals the allow-list; a template whose policies, principals, alarms,
autoscaling, endpoint or data reach anything else is refused, however its values
are built."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Template

from delivery.artifacts import PromotionError
from delivery.restorable import require_restorable, template_of
from delivery.serving_shape import SERVING_ACTIONS, SHAPE
from stacks.stage.names import StageNames
from tests.conftest import cdk_json_context, synth_stage
from tests.delivery.world import PINNED, REGION

STAGING = StageNames("tfhub-serving", "staging")
ACCOUNTS = {"staging": "222222222222", "prod": "333333333333"}
DIGEST = "d" * 64
# What `make assembly` pins a promoted stage to: the promoted copy, a prefix on
# instances, the archive in it for serverless; and what each variant's template shows.
VARIANTS: dict[str, tuple[str, str, Callable[[dict[str, Any]], None], tuple[str, ...]]] = {
    "prod-emails-prefix": (
        "prod",
        f"artifacts/promoted/{DIGEST}/",
        lambda stage: stage["alarms"].update(emails=["oncall@example.com"]),
        ("AWS::SNS::Subscription", "ModelDataSource", "DataCaptureConfig"),
    ),
    "staging-serverless-archive": (
        "staging",
        f"artifacts/promoted/{DIGEST}/model.tar.gz",
        lambda stage: stage.update(serving={"serverless": {"memory_mb": 3072, "max_concurrency": 5}}),
        ("ServerlessConfig", "ModelDataUrl"),
    ),
}


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict[str, Any]:
    """Each variant's serving template, synthesized once."""
    templates = {}
    for name, (stage, key, change, _) in VARIANTS.items():
        context = {**copy.deepcopy(cdk_json_context()), "artifact": key, "artifact_digest": DIGEST}
        change(context["stages"][stage])
        synthesized = synth_stage(stage, tmp_path_factory.mktemp(name), context)
        templates[name] = Template.from_stack(synthesized.serving).to_json()
    return templates


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_of_a_promoted_stage_may_be_restored(variants, variant):
    stage, key, _, shows = VARIANTS[variant]
    names = StageNames("tfhub-serving", stage)
    assert all(part in json.dumps(variants[variant]) for part in shows)
    require_restorable(variants[variant], names, REGION, ACCOUNTS[stage], key)


def test_the_shape_is_exactly_what_the_promoted_stages_synthesize(synthesized, variants):
    templates = [synthesized(stage).serving.to_json() for stage in ACCOUNTS] + list(variants.values())
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
    assert actions == SERVING_ACTIONS


def _of(template: dict, kind: str) -> dict:
    return next(r["Properties"] for r in template["Resources"].values() if r["Type"] == kind)


def _add(kind: str, **properties) -> Callable[[dict], None]:
    return lambda template: template["Resources"].update(Evil={"Type": kind, "Properties": properties})


def _update(kind: str, **properties) -> Callable[[dict], None]:
    return lambda template: _of(template, kind).update(properties)


def _statement(kind: str, document: str, **statement) -> Callable[[dict], None]:
    return lambda template: _of(template, kind)[document]["Statement"].append({"Effect": "Allow", **statement})


def _grant(**statement) -> Callable[[dict], None]:
    return _statement("AWS::IAM::Policy", "PolicyDocument", **statement)


def _container(**changes) -> Callable[[dict], None]:
    return lambda template: _of(template, "AWS::SageMaker::Model")["PrimaryContainer"].update(changes)


def _alarms(**changes) -> Callable[[dict], None]:
    def change(template: dict) -> None:
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                resource["Properties"].update(changes)

    return change


def _trust(principal: Any) -> dict:
    return {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}


ADMIN = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
SAGEMAKER = _trust({"Service": "sagemaker.amazonaws.com"})
OWN_ROLE = {"Ref": "ModelRole997FC3A9"}
ROOT = "arn:aws:iam::222222222222:root"
OTHER_ROLE = "arn:aws:iam::222222222222:role/x"
SPLIT = {"Fn::Join": ["", ["arn:aws:iam::", "111111", "111111", ":root"]]}
SUBSTITUTED = {"Fn::Sub": ["arn:aws:iam::${A}${B}:root", {"A": "111111", "B": "111111"}]}
LOCATION = {"Fn::Join": ["", ["s3://", {"Fn::ImportValue": "tfhub-serving-staging-bucket-name"}, f"/{PINNED}"]]}
TARGET = {"ServiceNamespace": "sagemaker", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
FOREIGN = "names arn:aws:iam::111111111111:root, outside the stage's account"

REFUSED = {
    # The audit's: a policy on a role or user by name, a trust or a bucket built in pieces.
    "policy-on-a-role-by-name": (
        _add("AWS::IAM::Policy", PolicyName="p", Roles=["tfhub-serving-staging-storage-PromotionRoleABC"]),
        "attached to tfhub-serving-staging-storage-PromotionRoleABC, which is no AWS::IAM::Role",
    ),
    "policy-on-a-user": (_add("AWS::IAM::Policy", PolicyName="p", Users=["mallory"]), r"has \['Users'\]"),
    "trust-split-in-a-join": (_add("AWS::IAM::Role", AssumeRolePolicyDocument=_trust({"AWS": SPLIT})), FOREIGN),
    "trust-sub-variable-map": (_add("AWS::IAM::Role", AssumeRolePolicyDocument=_trust({"AWS": SUBSTITUTED})), FOREIGN),
    "capture-to-a-joined-bucket": (
        _update(
            "AWS::SageMaker::EndpointConfig",
            DataCaptureConfig={"DestinationS3Uri": {"Fn::Join": ["", ["s3://", "attacker-bucket/cap"]]}},
        ),
        "names s3://attacker-bucket/cap, not the stage's bucket",
    ),
    # Roles: SageMaker's only, no managed or inline policies; policies only on them.
    "admin-on-its-own-role": (
        _add("AWS::IAM::Policy", PolicyName="p", Roles=[OWN_ROLE], PolicyDocument=ADMIN),
        r"allows \['\*'\]",
    ),
    "managed-admin": (
        _add(
            "AWS::IAM::Role",
            AssumeRolePolicyDocument=SAGEMAKER,
            ManagedPolicyArns=["arn:aws:iam::aws:policy/AdministratorAccess"],
        ),
        r"has \['ManagedPolicyArns'\]",
    ),
    "inline-policy": (
        _add(
            "AWS::IAM::Role",
            AssumeRolePolicyDocument=SAGEMAKER,
            Policies=[{"PolicyName": "p", "PolicyDocument": ADMIN}],
        ),
        r"has \['Policies'\]",
    ),
    "trust-own-account": (
        _add("AWS::IAM::Role", AssumeRolePolicyDocument=_trust({"AWS": ROOT})),
        f"allows the principal AWS '{ROOT}'",
    ),
    # Policies: the serving role's actions (in any case), S3 in the stage's bucket only.
    "iam-action": (_grant(Action="iam:PassRole", Resource="*"), r"allows \['iam:PassRole'\]"),
    "action-wildcard": (
        _grant(Action="s3:*", Resource={"Fn::ImportValue": "tfhub-serving-staging-bucket-arn"}),
        r"allows \['s3:\*'\]",
    ),
    "not-action": (_grant(NotAction="s3:GetObject", Resource="*"), r"has \['NotAction'\]"),
    "s3-everywhere": (_grant(Action="S3:GetObject", Resource="*"), r"grants S3 on \['\*'\]"),
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
        _statement("AWS::SNS::TopicPolicy", "PolicyDocument", Principal="*", Action="sns:Subscribe", Resource="*"),
        "allows the principal",
    ),
    # Alarms tell the stack's topic; subscriptions are emails to it.
    "alarm-action": (
        _alarms(AlarmActions=["arn:aws:automate:eu-west-1:ec2:terminate"]),
        "notifies arn:aws:automate:eu-west-1:ec2:terminate, which is no AWS::SNS::Topic",
    ),
    "ok-action": (_alarms(OKActions=[]), r"has \['OKActions'\]"),
    "subscription-https": (
        _add(
            "AWS::SNS::Subscription",
            Protocol="https",
            Endpoint="https://x.example",
            TopicArn={"Ref": "TfServingAlarmsTopicA884F505"},
        ),
        "delivers by 'https', not by email",
    ),
    # Autoscaling of the stage's endpoint only, under its service-linked role.
    "scale-another-endpoint": (
        _add("AWS::ApplicationAutoScaling::ScalableTarget", ResourceId="endpoint/other/variant/AllTraffic", **TARGET),
        "scales 'endpoint/other/variant/AllTraffic'",
    ),
    "scaling-role": (_add("AWS::ApplicationAutoScaling::ScalableTarget", RoleARN=OTHER_ROLE), r"has \['RoleARN'\]"),
    # The stage's endpoint serving the stack's Model, whose environment is the model's name only.
    "endpoint-name": (
        _update("AWS::SageMaker::Endpoint", EndpointName="tfhub-serving-other"),
        "is named 'tfhub-serving-other'",
    ),
    "variant-model": (
        lambda t: _of(t, "AWS::SageMaker::EndpointConfig")["ProductionVariants"][0].update(ModelName="other-model"),
        "serves other-model, which is no AWS::SageMaker::Model",
    ),
    "shadow-variants": (
        _update("AWS::SageMaker::EndpointConfig", ShadowProductionVariants=[]),
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
}


@pytest.mark.parametrize(("change", "refusal"), REFUSED.values(), ids=REFUSED.keys())
def test_a_template_of_any_other_shape_is_refused(synthesized, change, refusal):
    template = copy.deepcopy(template_of(synthesized("staging").outdir, STAGING))
    change(template)
    with pytest.raises(PromotionError, match=f"not one a rollback may deploy: .*{refusal}"):
        require_restorable(template, STAGING, REGION, ACCOUNTS["staging"], PINNED)
