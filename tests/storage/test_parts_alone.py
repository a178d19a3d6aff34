"""The storage stack's constructs on their own, in a bare stack: the artifact
store keeps or removes its data as told; the promotion role trusts exactly the
promoters it is given and writes only promoted copies and records."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from stacks.storage.promotion_role import PromotionRole
from stacks.storage.stack import ArtifactStore

# Each test synthesizes a bare stack.
pytestmark = pytest.mark.synth

ENV = cdk.Environment(account="111111111111", region="eu-west-1")


def bare() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "Bare", env=ENV)


@pytest.mark.parametrize("retain", [True, False], ids=["retained", "removed"])
def test_the_store_keeps_or_removes_its_buckets_as_told(retain):
    stack = bare()
    ArtifactStore(stack, "Store", retain=retain)
    template = Template.from_stack(stack)
    buckets = template.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 2  # the artifacts and their access logs
    expected = "Retain" if retain else "Delete"
    assert {bucket["DeletionPolicy"] for bucket in buckets.values()} == {expected}
    # Only a bucket that is removed is emptied first (CDK's auto-delete).
    assert bool(template.find_resources("Custom::S3AutoDeleteObjects")) is not retain


def test_the_promotion_role_trusts_the_named_promoters_only():
    stack = bare()
    bucket = s3.Bucket(stack, "Bucket")
    promoters = ["arn:aws:iam::222222222222:role/ci-deploy-*"]
    PromotionRole(stack, "Promotion", bucket=bucket, promoters=promoters, stage="staging")
    template = Template.from_stack(stack)
    (role,) = template.find_resources("AWS::IAM::Role").values()
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Condition"] == {"ArnLike": {"aws:PrincipalArn": promoters}}
    assert "222222222222" in str(statement["Principal"])
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Sid": "WriteNewCopiesAndRecords", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"]}
                        )
                    ]
                )
            }
        },
    )


def test_without_promoters_the_role_trusts_its_own_account():
    stack = bare()
    PromotionRole(stack, "Promotion", bucket=s3.Bucket(stack, "Bucket"), promoters=[], stage="dev")
    (role,) = Template.from_stack(stack).find_resources("AWS::IAM::Role").values()
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert "Condition" not in statement and ":root" in str(statement["Principal"])
