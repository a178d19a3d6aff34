"""Storage stack: the artifact bucket, its settings per stage, placeholder data, execution role."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from stacks.storage import TRAINING_DATA_KEY
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
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
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
        if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
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


def execution_role_statements(template):
    policy = only(
        template, "AWS::IAM::Policy", {"PolicyName": Match.string_like_regexp("ExecutionRole")}
    )
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


@pytest.mark.parametrize("stage", STAGES)
def test_execution_role_is_assumed_by_sagemaker_with_no_managed_policies(synthesized, stage):
    storage = synthesized(stage).storage
    roles = storage.find_resources(
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        Match.object_like(
                            {"Principal": {"Service": "sagemaker.amazonaws.com"}}
                        )
                    ]
                }
            }
        },
    )
    assert len(roles) == 1
    role = next(iter(roles.values()))["Properties"]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role


@pytest.mark.parametrize("stage", STAGES)
def test_execution_role_statements_are_least_privilege(synthesized, stage):
    statements = execution_role_statements(synthesized(stage).storage)
    serving_only = {
        "ReadOwnPrefixes",
        "ListOwnPrefixes",
        "PullImages",
        "EcrLogin",
        "EndpointLogGroup",
        "WriteLogStreams",
        "PutMetrics",
    }
    packaging = {"WriteJobOutput", "TrainingLogGroup"}
    rollback = {"DescribeRollbackAlarms"}
    expected = {"dev": serving_only | packaging, "staging": serving_only | rollback,
                "prod": serving_only | rollback | {"WriteDataCapture"}}
    assert set(statements) == expected[stage]
    for statement in statements.values():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement
        assert statement["Effect"] == "Allow"

    read = statements["ReadOwnPrefixes"]
    assert read["Action"] == "s3:GetObject"
    prefixes = ["artifacts/", "trainingData/"] if stage == "dev" else ["artifacts/"]
    resources = read["Resource"] if isinstance(read["Resource"], list) else [read["Resource"]]
    assert [r["Fn::Join"][1][-1] for r in resources] == [f"/{p}*" for p in prefixes]
    assert statements["ListOwnPrefixes"]["Condition"] == {
        "StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}
    }
    # Wildcard resources only where AWS offers no resource-level permission.
    assert statements["EcrLogin"]["Action"] == "ecr:GetAuthorizationToken"
    assert statements["PutMetrics"]["Resource"] == "*"
    namespaces = statements["PutMetrics"]["Condition"]["StringEquals"]["cloudwatch:namespace"]
    streams = str(statements["WriteLogStreams"]["Resource"])
    assert f"log-group:/aws/sagemaker/Endpoints/tfhub-serving-{stage}:log-stream:*" in streams
    if stage == "dev":
        assert namespaces == ["/aws/sagemaker/Endpoints", "/aws/sagemaker/TrainingJobs"]
        assert "log-group:/aws/sagemaker/TrainingJobs:log-stream:tfhub-serving-dev-pkg*" in streams
        write = statements["WriteJobOutput"]
        assert write["Action"] == ["s3:AbortMultipartUpload", "s3:PutObject"]
        assert write["Resource"]["Fn::Join"][1][-1] == "/artifacts/packaging/*"
    else:
        assert namespaces == ["/aws/sagemaker/Endpoints"]
    if stage == "prod":
        capture = statements["WriteDataCapture"]
        assert capture["Action"] == "s3:PutObject"
        assert capture["Resource"]["Fn::Join"][1][-1] == "/datacapture/*"


@pytest.mark.parametrize(
    ("stage", "repositories"),
    [
        ("dev", ["tensorflow-inference", "tensorflow-training"]),
        ("staging", ["tensorflow-inference"]),
        ("prod", ["tensorflow-inference"]),
    ],
)
def test_execution_role_pulls_only_the_images_it_runs(synthesized, stage, repositories):
    pull = execution_role_statements(synthesized(stage).storage)["PullImages"]
    region = synthesized(stage).stage.serving.region
    expected = [f"arn:aws:ecr:{region}:763104351884:repository/{r}" for r in repositories]
    assert pull["Resource"] == (expected if len(expected) > 1 else expected[0])


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
