"""Storage stack: the artifact bucket, its settings per stage, placeholder data."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from stacks.storage.stack import TRAINING_DATA_KEY
from tests.conftest import STAGES


def only(template, resource_type, props=None):
    found = template.find_resources(resource_type, {"Properties": props} if props else None)
    assert len(found) == 1, found
    return next(iter(found.values()))


def artifact_bucket(template):
    return only(template, "AWS::S3::Bucket", {"VersioningConfiguration": Match.any_value()})


@pytest.mark.parametrize("stage", STAGES)
def test_artifact_bucket_is_private_encrypted_versioned_and_logged(synthesized, stage):
    storage = synthesized(stage).storage
    storage.resource_count_is("AWS::S3::Bucket", 2)
    storage.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {
                "DestinationBucketName": {"Ref": Match.string_like_regexp("AccessLogs")},
                "LogFilePrefix": "artifact-bucket/",
            },
            "LifecycleConfiguration": {
                "Rules": [
                    Match.object_like(
                        {
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                            "Status": "Enabled",
                        }
                    )
                ]
            },
        },
    )


@pytest.mark.parametrize("stage", STAGES)
def test_both_buckets_refuse_plain_http(synthesized, stage):
    policies = synthesized(stage).storage.find_resources("AWS::S3::BucketPolicy")
    ssl_only = [
        p
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(ssl_only) == 2


def test_dev_buckets_are_emptied_and_deleted_on_destroy(synthesized):
    storage = synthesized("dev").storage
    buckets = storage.find_resources("AWS::S3::Bucket")
    assert {b["DeletionPolicy"] for b in buckets.values()} == {"Delete"}
    # CDK's auto-delete-objects custom resource empties each bucket first.
    storage.resource_count_is("Custom::S3AutoDeleteObjects", 2)


def test_prod_buckets_are_retained(synthesized):
    storage = synthesized("prod").storage
    buckets = storage.find_resources("AWS::S3::Bucket")
    assert {b["DeletionPolicy"] for b in buckets.values()} == {"Retain"}
    assert {b["UpdateReplacePolicy"] for b in buckets.values()} == {"Retain"}
    storage.resource_count_is("Custom::S3AutoDeleteObjects", 0)


@pytest.mark.parametrize("stage", STAGES)
def test_placeholder_training_data_is_written_where_the_train_channel_reads(synthesized, stage):
    storage = synthesized(stage).storage
    assert TRAINING_DATA_KEY == "trainingData/train/train.csv"
    resource = only(storage, "Custom::AWS")
    create = resource["Properties"]["Create"]
    # The call is serialized to a JSON string with the bucket name as a token.
    assert '"action":"PutObject"' in str(create)
    assert f'"Key":"{TRAINING_DATA_KEY}"' in str(create)
    policy = only(storage, "AWS::IAM::Policy", {"PolicyName": Match.string_like_regexp("CustomResourcePolicy")})
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Action"] for s in statements] == ["s3:PutObject"]
    assert TRAINING_DATA_KEY in str(statements[0]["Resource"])


@pytest.mark.parametrize(("stage", "protected"), [("dev", False), ("staging", False), ("prod", True)])
def test_stages_that_retain_data_are_termination_protected(synthesized, stage, protected):
    stage_ = synthesized(stage).stage
    assert stage_.storage.termination_protection is protected
    assert stage_.serving.termination_protection is protected


@pytest.mark.parametrize("stage", STAGES)
def test_serving_imports_storage_outputs_through_strong_references(synthesized, stage):
    # Exports lock the storage stack while serving uses them, and need no
    # cloudformation:DescribeStacks on the deploy role (weak references do).
    serving_json = str(synthesized(stage).serving.to_json())
    assert "Fn::ImportValue" in serving_json
    assert "Fn::GetStackOutput" not in serving_json
