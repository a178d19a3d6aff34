"""What the CI roles may do: what each make target calls, on this stage's resources only."""

from __future__ import annotations

import pytest

from stacks.stage.names import StageNames
from tests.account_setup.world import (
    ACCOUNTS,
    REGIONS,
    SOURCE,
    account_trust,
    as_list,
    assume_role,
    deploy_role,
    role_arn,
)
from tests.conftest import STAGES, cdk_json_context
from tests.iam_simulation import Account, simulate


@pytest.mark.parametrize("stage", STAGES)
def test_no_role_has_a_wildcard_action_or_a_managed_policy(ci_access, stage):
    synth = ci_access(stage)
    for resource in synth.resources.values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                assert all("*" not in action for action in as_list(statement["Action"])), statement
        if resource["Type"] == "AWS::IAM::Role":
            assert "ManagedPolicyArns" not in resource["Properties"]
            assert "Policies" not in resource["Properties"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_deploy_role_has_what_each_tool_of_the_stage_calls(ci_access, stage):
    synth = ci_access(stage)
    role_id, _ = deploy_role(synth)
    # Promotion only into a stage that has a source; `make logs` only where the stage packages.
    expected = {"Deploy", "SmokeAndDigest", "LeftoverCheck"} | ({"FollowLogs"} if stage == "dev" else {"Promote"})
    assert set(synth.policies(role_id)) == expected
    statements = synth.statements(role_id)
    account, region = ACCOUNTS[stage], REGIONS[stage]
    assert statements["ReadTheServingOutputs"]["Resource"] == (
        f"arn:aws:cloudformation:{region}:{account}:stack/tfhub-serving-{stage}-serving/*"
    )
    assert sorted(statements["CheckTheUpdate"]["Resource"]) == [
        f"arn:aws:sagemaker:{region}:{account}:endpoint-config/*",
        f"arn:aws:sagemaker:{region}:{account}:endpoint/tfhub-serving-{stage}",
    ]
    assert statements["CallTheEndpoint"] == {
        "Sid": "CallTheEndpoint",
        "Effect": "Allow",
        "Action": "sagemaker:InvokeEndpoint",
        "Resource": f"arn:aws:sagemaker:{region}:{account}:endpoint/tfhub-serving-{stage}",
    }
    manifest = statements["ReadTheServedManifest"]
    assert manifest["Action"] == "s3:GetObject"
    assert manifest["Resource"] == f"arn:aws:s3:::tfhub-serving-{stage}-*/artifacts/*"
    assert manifest["Condition"] == {"StringEquals": {"s3:ResourceAccount": account}}
    if stage == "dev":
        prefix = StageNames("tfhub-serving", "dev").job_name_prefix
        assert statements["WatchThePackagingJobs"]["Resource"] == (
            f"arn:aws:sagemaker:{region}:{account}:training-job/{prefix}-*"
        )
        assert statements["ReadThePackagingLogs"]["Resource"] == (
            f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/TrainingJobs:*"
        )
    # '*' only for actions without resource-level permissions.
    unscoped = {action for s in statements.values() if s["Resource"] == "*" for action in as_list(s["Action"])}
    assert unscoped == {
        "sagemaker:ListEndpoints",
        "sagemaker:ListEndpointConfigs",
        "sagemaker:ListModels",
        "sagemaker:ListTrainingJobs",
        "application-autoscaling:DescribeScalableTargets",
    } | ({"cloudformation:ListExports"} if stage != "dev" else set())


@pytest.mark.parametrize("stage", STAGES)
def test_the_deploy_role_assumes_only_its_accounts_bootstrap_and_promotion_roles_and_the_source_reader(
    ci_access, stage
):
    synth = ci_access(stage)
    role_id, _ = deploy_role(synth)
    account, region = ACCOUNTS[stage], REGIONS[stage]
    assumes = [s for s in synth.statements(role_id).values() if s["Action"] == "sts:AssumeRole"]
    targets = {resource: s.get("Condition") for s in assumes for resource in as_list(s["Resource"])}
    expected = {
        f"arn:aws:iam::{account}:role/cdk-hnb659fds-{kind}-{account}-{region}": None
        for kind in ("deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role")
    }
    if stage in SOURCE:
        # The promotion role's name is generated: matched by the tags the stage puts on it.
        expected[f"arn:aws:iam::{account}:role/*"] = {
            "StringEquals": {"iam:ResourceTag/project": "tfhub-serving", "iam:ResourceTag/stage": stage}
        }
        # The one role outside this account: the source stage's read role (make promote's reads).
        expected[role_arn(SOURCE[stage], "source-read")] = None
    assert targets == expected


@pytest.mark.parametrize("stage", STAGES)
def test_iam_lets_the_deploy_role_assume_exactly_the_roles_it_needs(ci_access, synthesized, stage):
    synth = ci_access(stage)
    account, region = ACCOUNTS[stage], REGIONS[stage]
    # The promotion role as the app's storage stack tags and trusts it (conftest's synthesized stage;
    # dev's is account-agnostic there, resolved to the simulator's account, which is DEV_ACCOUNT).
    storage = synthesized(stage).storage.to_json()
    (promotion,) = [
        r["Properties"]
        for k, r in storage["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and k.startswith("PromotionRole")
    ]
    promotion_tags = {t["Key"]: t["Value"] for t in promotion["Tags"]}
    promotion_trust = Account(storage).resolve(promotion["AssumeRolePolicyDocument"])
    promotion_arn = f"arn:aws:iam::{account}:role/tfhub-serving-{stage}-storage-PromotionRole-ABC123"
    cases = {
        "bootstrap deploy role": (
            f"arn:aws:iam::{account}:role/cdk-hnb659fds-deploy-role-{account}-{region}",
            account_trust(account),
            None,
        ),
        "another account's bootstrap role": (
            f"arn:aws:iam::999999999999:role/cdk-hnb659fds-deploy-role-999999999999-{region}",
            account_trust("999999999999"),
            None,
        ),
        "the promotion role": (promotion_arn, promotion_trust, promotion_tags),
        "another stage's promotion role": (promotion_arn, promotion_trust, {**promotion_tags, "stage": "other"}),
        "an untagged role of the account": (f"arn:aws:iam::{account}:role/Administrator", account_trust(account), None),
    }
    decisions = dict(zip(cases, simulate([assume_role(synth, *case) for case in cases.values()]), strict=True))
    allowed = {"bootstrap deploy role"} | ({"the promotion role"} if stage in SOURCE else set())
    assert decisions == {name: "Allowed" if name in allowed else "ImplicitlyDenied" for name in cases}


@pytest.mark.parametrize("stage", ["dev", "staging"])
def test_iam_lets_the_read_role_read_what_a_promotion_from_the_stage_reads(ci_access, stage):
    """Outputs, the export naming its bucket (the artifact must be in it) and artifacts;
    from staging, which serves promoted copies, also its promotion log (prod takes only
    a digest staging verified)."""
    synth = ci_access(stage)
    role_id, _ = synth.role("-source-read")
    account, region = ACCOUNTS[stage], REGIONS[stage]
    principal = role_arn(stage, "source-read")
    policies = [{"name": name, "policy": doc} for name, doc in synth.policies(role_id).items()]
    # A name as CloudFormation generates it for the storage stack's bucket.
    bucket = f"tfhub-serving-{stage}-storage-artifactsbucket88671897-1a2b3c4d5e6f"

    def request(action: str, resource: str, owner: str = account, **context: str) -> dict:
        return {
            "identityPolicies": policies,
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
            "request": {
                "principal": principal,
                "action": action,
                "resource": {"resource": resource, "accountId": owner},
                "contextVariables": {"aws:PrincipalArn": principal, "s3:ResourceAccount": owner, **context},
            },
        }

    serving = f"arn:aws:cloudformation:{region}:{account}:stack/tfhub-serving-{stage}-serving/0a1b2c3d"
    storage = f"arn:aws:cloudformation:{region}:{account}:stack/tfhub-serving-{stage}-storage/0a1b2c3d"
    other = next(s for s in STAGES if s != stage)
    promoted = stage == "staging"
    log = "Allowed" if promoted else "ImplicitlyDenied"
    cases = {
        "serving outputs": (request("cloudformation:DescribeStacks", serving), "Allowed"),
        "the storage stack": (request("cloudformation:DescribeStacks", storage), "ImplicitlyDenied"),
        "an artifact": (request("s3:GetObject", f"arn:aws:s3:::{bucket}/artifacts/promoted/d/model.tar.gz"), "Allowed"),
        "the artifact prefix listed": (
            request(
                "s3:ListBucket", f"arn:aws:s3:::{bucket}", **{"s3:prefix": "artifacts/packaging/job/output/model/"}
            ),
            "Allowed",
        ),
        "the exports": (request("cloudformation:ListExports", "*"), "Allowed"),
        "a promotion record": (request("s3:GetObject", f"arn:aws:s3:::{bucket}/promotions/00000001-t-d.json"), log),
        "the records listed": (request("s3:ListBucket", f"arn:aws:s3:::{bucket}", **{"s3:prefix": "promotions/"}), log),
        "a stored assembly": (
            request("s3:GetObject", f"arn:aws:s3:::{bucket}/promotions/assemblies/a.tar.gz"),
            "ImplicitlyDenied",
        ),
        "the bucket listed whole": (
            request("s3:ListBucket", f"arn:aws:s3:::{bucket}", **{"s3:prefix": ""}),
            "ImplicitlyDenied",
        ),
        "a write": (request("s3:PutObject", f"arn:aws:s3:::{bucket}/artifacts/x"), "ImplicitlyDenied"),
        "another stage's bucket": (
            request("s3:GetObject", f"arn:aws:s3:::tfhub-serving-{other}-storage-b-1/artifacts/x"),
            "ImplicitlyDenied",
        ),
        "a same-named bucket of another account": (
            request("s3:GetObject", f"arn:aws:s3:::{bucket}/artifacts/x", owner="999999999999"),
            "ImplicitlyDenied",
        ),
    }
    decisions = dict(zip(cases, simulate([case for case, _ in cases.values()]), strict=True))
    assert decisions == {name: expected for name, (_, expected) in cases.items()}


def test_no_stages_bucket_pattern_matches_another_stages_storage_stack():
    """The bucket is matched by the start of the name CloudFormation generates from its
    stack's name; each stage's start must not be another stage's."""
    stacks = {stage: f"tfhub-serving-{stage}-storage" for stage in cdk_json_context()["stages"]}
    for stage in stacks:
        prefix = f"tfhub-serving-{stage}-"
        assert [s for s, name in stacks.items() if name.startswith(prefix)] == [stage]
