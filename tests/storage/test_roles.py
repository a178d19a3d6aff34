"""The stage's three roles: the Model's (serving stack), the packaging job's and the
promotion's (storage stack); each has only what its part needs."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from tests.conftest import STAGES, synth_stage


def role_and_statements(template: Template, prefix: str) -> tuple[dict, dict[str, dict]]:
    resources = template.to_json()["Resources"]
    (role_id,) = [k for k, r in resources.items() if r["Type"] == "AWS::IAM::Role" and k.startswith(prefix)]
    (policy,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and r["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    for statement in statements.values():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert statement["Effect"] == "Allow" and all("*" not in a for a in actions), statement
    return resources[role_id]["Properties"], statements


def tail(resource) -> str:
    """The literal end of a Fn::Join'ed ARN."""
    return resource["Fn::Join"][1][-1] if isinstance(resource, dict) else resource


def assumed_by_sagemaker_only(role: dict) -> None:
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "ManagedPolicyArns" not in role and "Policies" not in role


@pytest.mark.parametrize("stage", STAGES)
def test_the_models_role_reads_exactly_the_artifact_it_serves(synthesized, stage):
    serving = synthesized(stage).serving
    role, statements = role_and_statements(serving, "ModelRole")
    assumed_by_sagemaker_only(role)
    common = {
        "ReadTheArtifact",
        "ListTheArtifact",
        "PullImages",
        "EcrLogin",
        "LogGroup",
        "WriteLogStreams",
        "PutMetrics",
    }
    expected = {
        "dev": common,
        "staging": common | {"DescribeRollbackAlarms"},
        "prod": common | {"DescribeRollbackAlarms", "WriteDataCapture"},
    }[stage]
    assert set(statements) == expected
    read = statements["ReadTheArtifact"]
    assert read["Action"] == "s3:GetObject"
    if stage == "dev":
        (job_id,) = serving.find_resources("Custom::TfHubPackagingJob")
        assert read["Resource"]["Fn::Join"][1][-1] == {"Fn::GetAtt": [job_id, "ArtifactKey"]}
    else:
        assert tail(read["Resource"]) == "/artifacts/universal-sentence-encoder/4/model.tar.gz"
    # Its only write is data capture (prod), never under artifacts/.
    writes = [s for s in statements.values() if "s3:PutObject" in json.dumps(s["Action"])]
    assert [tail(s["Resource"]) for s in writes] == (["/datacapture/*"] if stage == "prod" else [])
    assert statements["PullImages"]["Resource"].endswith(":repository/tensorflow-inference")
    assert statements["PutMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}
    }
    assert f"log-group:/aws/sagemaker/Endpoints/tfhub-serving-{stage}:log-stream:*" in json.dumps(
        statements["WriteLogStreams"]["Resource"]
    )
    # CreateModel checks the role may read the artifact: the policy comes first.
    (model,) = serving.find_resources("AWS::SageMaker::Model").values()
    assert any(d.startswith("ModelRolePermissions") for d in model["DependsOn"])


def test_an_uncompressed_artifact_is_read_only_as_the_packaging_job_lays_it_out(context, tmp_path):
    context["stages"]["staging"]["pinned_artifact"] = "artifacts/promoted/abc/model/"
    serving = Template.from_stack(synth_stage("staging", tmp_path, context).serving)
    _, statements = role_and_statements(serving, "ModelRole")
    # Its model version's files and its manifest: not code/, another version, nor the root.
    assert sorted(tail(r) for r in statements["ReadTheArtifact"]["Resource"]) == [
        "/artifacts/promoted/abc/model/manifest.json",
        "/artifacts/promoted/abc/model/universal-sentence-encoder/4/*",
    ]
    assert statements["ListTheArtifact"]["Condition"] == {
        "StringLike": {"s3:prefix": ["artifacts/promoted/abc/model/*"]}
    }


def test_the_packaging_role_writes_its_own_job_folders_and_pulls_the_training_image(synthesized):
    synth = synthesized("dev")
    role, statements = role_and_statements(synth.storage, "PackagingRole")
    assumed_by_sagemaker_only(role)
    prefix = synth.stage.config.job_name_prefix
    assert set(statements) == {
        "ReadTrainingData",
        "ListTrainingData",
        "WriteJobFolders",
        "PullImages",
        "EcrLogin",
        "LogGroup",
        "WriteLogStreams",
        "PutMetrics",
    }
    assert statements["WriteJobFolders"]["Action"] == ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert tail(statements["WriteJobFolders"]["Resource"]) == f"/artifacts/packaging/{prefix}-*"
    assert tail(statements["ReadTrainingData"]["Resource"]) == "/trainingData/*"
    assert statements["PullImages"]["Resource"].endswith(":repository/tensorflow-training")
    assert f"log-group:/aws/sagemaker/TrainingJobs:log-stream:{prefix}-*" in json.dumps(
        statements["WriteLogStreams"]["Resource"]
    )
    assert statements["PutMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
    }


def test_the_volume_key_is_granted_only_to_sagemaker_resources(context, tmp_path):
    key = "arn:aws:kms:us-east-1:111111111111:key/11111111-2222-3333-4444-555555555555"
    context["stages"]["dev"]["packaging"]["volume_kms_key_arn"] = key
    storage = Template.from_stack(synth_stage("dev", tmp_path, context).storage)
    _, statements = role_and_statements(storage, "PackagingRole")
    assert statements["UseVolumeKey"]["Action"] == ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
    grant = statements["GrantVolumeKeyToSageMaker"]
    assert (grant["Action"], grant["Resource"]) == ("kms:CreateGrant", key)
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_only_packaging_stages_have_a_packaging_role(synthesized):
    for stage, count in (("dev", 1), ("staging", 0), ("prod", 0)):
        storage = synthesized(stage).storage.to_json()
        roles = [
            k
            for k, r in storage["Resources"].items()
            if r["Type"] == "AWS::IAM::Role" and k.startswith("PackagingRole")
        ]
        exports = [o["Export"]["Name"] for o in storage.get("Outputs", {}).values() if "Export" in o]
        assert len(roles) == count
        assert (f"tfhub-serving-{stage}-packaging-role-arn" in exports) == bool(count)
        assert f"tfhub-serving-{stage}-promotion-role-arn" in exports


@pytest.mark.parametrize("stage", STAGES)
def test_the_promotion_role_writes_copies_and_records_and_is_assumed_within_the_account(synthesized, stage):
    role, statements = role_and_statements(synthesized(stage).storage, "PromotionRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert json.dumps(trust["Principal"]).count(":root") == 1 and "Condition" not in trust
    assert set(statements) == {
        "ReadCopiesAndRecords",
        "ListCopiesAndRecords",
        "WriteNewCopiesAndRecords",
    }
    assert sorted(tail(r) for r in statements["WriteNewCopiesAndRecords"]["Resource"]) == [
        "/artifacts/promoted/*",
        "/promotions/*",
    ]
    # Nothing it may delete: a delete (a delete marker in a versioned bucket) then a
    # conditional write would swap what new instances load.
    assert not [a for st in statements.values() for a in [st["Action"]] if "Delete" in json.dumps(a)]


def test_promoters_narrow_who_may_assume_the_promotion_role(context, tmp_path):
    promoters = ["arn:aws:iam::444444444444:role/ci-deploy", "arn:aws:iam::333333333333:role/release-*"]
    context["stages"]["prod"]["promoters"] = promoters
    storage = Template.from_stack(synth_stage("prod", tmp_path, context).storage)
    role, _ = role_and_statements(storage, "PromotionRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    # Their accounts, and within them only the principals named (patterns allowed).
    assert sorted(trust["Principal"]["AWS"]) == ["arn:aws:iam::333333333333:root", "arn:aws:iam::444444444444:root"]
    assert trust["Condition"] == {"ArnLike": {"aws:PrincipalArn": promoters}}
