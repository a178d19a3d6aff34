"""The account setup (`account_setup/`): each stage's CI access stack, synthesized for
dev, staging and prod; its trust and permissions read from the templates and
decided by IAM's evaluation logic (iam-simulate); the compliance gates; and
one-line errors for bad context."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam

from account_setup.app import build
from account_setup.settings import PROMOTES_TO, load_access_settings
from stacks.stage.schema import ConfigError
from tests.compliance.test_checkov import checkov
from tests.compliance.test_compliance import run_cfn_lint
from tests.conftest import DEV_REGION, ROOT, STAGES, cdk_json_context
from tests.iam_simulation import ACCOUNT, Account, simulate

REPO = "octo-org/octo-repo"
# dev's account, which cdk.json leaves null, as CDK_DEFAULT_ACCOUNT gives it: the simulator's account.
DEV_ACCOUNT = ACCOUNT
ACCOUNTS = {"dev": DEV_ACCOUNT, **{s: cdk_json_context()["stages"][s]["account"] for s in ("staging", "prod")}}
REGIONS = {"dev": DEV_REGION, **{s: cdk_json_context()["stages"][s]["region"] for s in ("staging", "prod")}}
SOURCE = {"staging": "dev", "prod": "staging"}
READER = {"dev": "staging", "staging": "prod"}
GITHUB = "token.actions.githubusercontent.com"
ENVIRON = {"CDK_DEFAULT_ACCOUNT": DEV_ACCOUNT, "AWS_REGION": DEV_REGION}


def app_with(outdir: pathlib.Path, **context: str) -> cdk.App:
    return cdk.App(outdir=str(outdir), context={**cdk_json_context(), **context})


def stage_context(stage: str) -> dict[str, str]:
    # Only staging needs a -c value: it promotes from dev, whose account cdk.json leaves null.
    return {"stage": stage, "github_repo": REPO, **({"source_account": DEV_ACCOUNT} if stage == "staging" else {})}


class Synthesized:
    """One stage's CI access stack, synthesized by the account setup app's own `build`."""

    def __init__(self, stage: str, outdir: pathlib.Path) -> None:
        self.stage = stage
        self.outdir = outdir
        app = app_with(outdir, **stage_context(stage))
        build(app, ENVIRON)
        app.synth()  # raises on any unacknowledged cdk-nag finding
        (path,) = outdir.glob("*.template.json")
        self.path = path
        self.template = json.loads(path.read_text())
        self.resources = self.template["Resources"]

    def role(self, name_part: str) -> tuple[str, dict] | None:
        roles = [
            (k, r["Properties"])
            for k, r in self.resources.items()
            if r["Type"] == "AWS::IAM::Role" and name_part in r["Properties"]["RoleName"]
        ]
        return roles[0] if roles else None

    def policies(self, role_id: str) -> dict[str, dict]:
        """The role's inline policies by construct name (Deploy, Promote, ...)."""
        # Logical ids are the construct path and an 8-character hash: <role's construct><policy's>.
        return {
            k[len(role_id) - 8 : -8]: r["Properties"]["PolicyDocument"]
            for k, r in self.resources.items()
            if r["Type"] == "AWS::IAM::Policy" and r["Properties"]["Roles"] == [{"Ref": role_id}]
        }

    def statements(self, role_id: str) -> dict[str, dict]:
        return {s["Sid"]: s for doc in self.policies(role_id).values() for s in doc["Statement"]}

    @property
    def provider_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNTS[self.stage]}:oidc-provider/{GITHUB}"

    def resolved(self, value: Any) -> Any:
        """`value` with the OIDC provider's Ref as its ARN (all else is literal: every account is known)."""
        (provider_id,) = [k for k, r in self.resources.items() if r["Type"] == "AWS::IAM::OIDCProvider"]
        return json.loads(json.dumps(value).replace(json.dumps({"Ref": provider_id}), json.dumps(self.provider_arn)))


@pytest.fixture(scope="module")
def ci_access(tmp_path_factory):
    cache: dict[str, Synthesized] = {}

    def get(stage: str) -> Synthesized:
        if stage not in cache:
            cache[stage] = Synthesized(stage, tmp_path_factory.mktemp(f"ci-access-{stage}"))
        return cache[stage]

    return get


def deploy_role(synth: Synthesized) -> tuple[str, dict]:
    found = synth.role("-github-deploy")
    assert found is not None
    return found


def role_arn(stage: str, kind: str) -> str:
    return f"arn:aws:iam::{ACCOUNTS[stage]}:role/tfhub-serving-{stage}-{kind}"


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# --- the deploy role's trust ---------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_deploy_role_trusts_only_github_tokens_of_the_stages_environment(ci_access, stage):
    synth = ci_access(stage)
    role_id, role = deploy_role(synth)
    assert role["RoleName"] == f"tfhub-serving-{stage}-github-deploy"
    assert role["MaxSessionDuration"] == 3 * 3600
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    (statement,) = synth.resolved(role["AssumeRolePolicyDocument"])["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": synth.provider_arn},
        "Condition": {
            "StringEquals": {
                f"{GITHUB}:aud": "sts.amazonaws.com",
                f"{GITHUB}:sub": f"repo:{REPO}:environment:{stage}",
            }
        },
    }
    (provider,) = [r["Properties"] for r in synth.resources.values() if r["Type"] == "AWS::IAM::OIDCProvider"]
    assert provider == {"Url": f"https://{GITHUB}", "ClientIdList": ["sts.amazonaws.com"]}


def web_identity_decisions(synth: Synthesized, tokens: list[tuple[str, str, str]]) -> list[str]:
    """IAM's decision on AssumeRoleWithWebIdentity for (provider ARN, sub, aud) tokens.

    Through `tests/iam_simulate_web_identity.mjs`: the project's `simulate` helper
    drops the `token.actions.githubusercontent.com:sub`/`:aud` keys (iam-simulate's
    data does not list them for the action), so it would deny every token."""
    _, role = deploy_role(synth)
    trust = synth.resolved(role["AssumeRolePolicyDocument"])
    simulations = [
        {
            "identityPolicies": [],
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
            "resourcePolicy": trust,
            "request": {
                "principal": provider,
                "action": "sts:AssumeRoleWithWebIdentity",
                "resource": {"resource": role_arn(synth.stage, "github-deploy"), "accountId": ACCOUNTS[synth.stage]},
                "contextVariables": {f"{GITHUB}:sub": sub, f"{GITHUB}:aud": aud},
            },
        }
        for provider, sub, aud in tokens
    ]
    answers = json.loads(
        subprocess.run(
            [str(ROOT / "node_modules" / ".bin" / "node"), str(ROOT / "tests" / "iam_simulate_web_identity.mjs")],
            input=json.dumps(simulations),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    )
    assert all(answer["errors"] is None for answer in answers), answers
    return [answer["result"] for answer in answers]


@pytest.mark.parametrize("stage", STAGES)
def test_only_a_token_of_the_stages_environment_gets_in(ci_access, stage):
    synth = ci_access(stage)
    provider, aud = synth.provider_arn, "sts.amazonaws.com"
    other_stage = next(s for s in STAGES if s != stage)
    tokens = {
        "the stage's environment": (provider, f"repo:{REPO}:environment:{stage}", aud),
        "another environment": (provider, f"repo:{REPO}:environment:{other_stage}", aud),
        "a branch, no environment": (provider, f"repo:{REPO}:ref:refs/heads/main", aud),
        "a pull request": (provider, f"repo:{REPO}:pull_request", aud),
        "another repository": (provider, f"repo:octo-org/fork:environment:{stage}", aud),
        "the owner in other case": (provider, f"repo:Octo-Org/octo-repo:environment:{stage}", aud),
        "another audience": (provider, f"repo:{REPO}:environment:{stage}", "sigstore"),
        "another provider": (
            f"arn:aws:iam::{ACCOUNTS[stage]}:oidc-provider/gitlab.com",
            f"repo:{REPO}:environment:{stage}",
            aud,
        ),
    }
    decisions = dict(zip(tokens, web_identity_decisions(synth, list(tokens.values())), strict=True))
    assert decisions == {
        name: "Allowed" if name == "the stage's environment" else "ImplicitlyDenied" for name in tokens
    }


def test_an_existing_provider_is_used_not_created(tmp_path):
    arn = f"arn:aws:iam::{ACCOUNTS['prod']}:oidc-provider/{GITHUB}"
    app = app_with(tmp_path, **stage_context("prod"), oidc_provider_arn=arn)
    stack = build(app, ENVIRON)
    resources = app.synth().get_stack_by_name(stack.stack_name).template["Resources"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::IAM::OIDCProvider"]
    (role,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Federated": arn}


# --- the deploy role's permissions ----------------------------------------------------------


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
        assert statements["WatchThePackagingJobs"]["Resource"].startswith(
            f"arn:aws:sagemaker:{region}:{account}:training-job/tfhub-serving-dev-"
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


def assume_role(synth: Synthesized, target: str, trust: dict, tags: dict[str, str] | None = None) -> dict:
    role_id, _ = deploy_role(synth)
    principal = role_arn(synth.stage, "github-deploy")
    return {
        "identityPolicies": [{"name": name, "policy": doc} for name, doc in synth.policies(role_id).items()],
        "serviceControlPolicies": [],
        "resourceControlPolicies": [],
        "resourcePolicy": trust,
        "request": {
            "principal": principal,
            "action": "sts:AssumeRole",
            "resource": {"resource": target, "accountId": target.split(":")[4]},
            "contextVariables": {
                "aws:PrincipalArn": principal,
                **{f"iam:ResourceTag/{k}": v for k, v in (tags or {}).items()},
            },
        },
    }


def account_trust(account: str) -> dict:
    """A trust policy like the bootstrap roles' and the promotion role's: any principal of
    `account` whose own IAM policy allows it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}
        ],
    }


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


# --- the read role ---------------------------------------------------------------------------


def test_prod_has_no_read_role(ci_access):
    synth = ci_access("prod")
    assert synth.role("-source-read") is None
    assert "SourceReadRoleArn" not in synth.template["Outputs"]


@pytest.mark.parametrize("stage", ["dev", "staging"])
def test_the_read_role_trusts_exactly_the_next_stages_deploy_role(ci_access, stage):
    synth = ci_access(stage)
    _, role = synth.role("-source-read")
    reader = READER[stage]
    assert role["RoleName"] == f"tfhub-serving-{stage}-source-read"
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNTS[reader]}:root"},
            "Condition": {"ArnEquals": {"aws:PrincipalArn": role_arn(reader, "github-deploy")}},
        }
    ]


@pytest.mark.parametrize("stage", ["dev", "staging"])
def test_iam_lets_only_the_next_stages_deploy_role_read_and_the_chain_closes(ci_access, stage):
    """The next stage's deploy role (its own synthesized policies) assumes this stage's
    read role (its synthesized trust): both halves of the cross-account grant."""
    synth, reader = ci_access(stage), ci_access(READER[stage])
    _, role = synth.role("-source-read")
    reader_id, _ = deploy_role(reader)
    read_role = role_arn(stage, "source-read")
    identity = [{"name": name, "policy": doc} for name, doc in reader.policies(reader_id).items()]

    def request(principal: str, policies: list[dict]) -> dict:
        return {
            "identityPolicies": policies,
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
            "resourcePolicy": role["AssumeRolePolicyDocument"],
            "request": {
                "principal": principal,
                "action": "sts:AssumeRole",
                "resource": {"resource": read_role, "accountId": ACCOUNTS[stage]},
                "contextVariables": {"aws:PrincipalArn": principal},
            },
        }

    next_account = ACCOUNTS[READER[stage]]
    cases = {
        "the next stage's deploy role": request(role_arn(READER[stage], "github-deploy"), identity),
        "another role of the next account": request(
            f"arn:aws:iam::{next_account}:role/Administrator",
            [
                {
                    "name": "admin",
                    "policy": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
                    },
                }
            ],
        ),
        "a same-named role of another account": request(
            f"arn:aws:iam::999999999999:role/tfhub-serving-{READER[stage]}-github-deploy", identity
        ),
    }
    decisions = dict(zip(cases, simulate(list(cases.values())), strict=True))
    assert decisions == {
        name: "Allowed" if name == "the next stage's deploy role" else "ImplicitlyDenied" for name in cases
    }


@pytest.mark.parametrize("stage", ["dev", "staging"])
def test_iam_lets_the_read_role_read_what_a_promotion_from_the_stage_reads(ci_access, stage):
    """Outputs and artifacts; from staging, which serves promoted copies, also the export
    naming its bucket and its promotion log (prod takes only a digest staging verified)."""
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
        "the exports": (request("cloudformation:ListExports", "*"), log),
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


# --- outputs, names, the workflow -------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_outputs_name_the_github_environment_variables(ci_access, stage):
    synth = ci_access(stage)
    outputs = synth.template["Outputs"]
    assert synth.path.name == f"tfhub-serving-{stage}-ci-access.template.json"
    assert outputs["DeployRoleArn"]["Description"] == f"GitHub environment {stage}: AWS_DEPLOY_ROLE_ARN"
    assert outputs["AccountId"] == {
        "Description": f"GitHub environment {stage}: AWS_ACCOUNT_ID",
        "Value": ACCOUNTS[stage],
    }
    source_region = f"; environment {READER[stage]}: SOURCE_REGION" if stage in READER else ""
    assert outputs["Region"] == {
        "Description": f"GitHub environment {stage}: AWS_REGION{source_region}",
        "Value": REGIONS[stage],
    }
    if stage in READER:
        assert outputs["SourceReadRoleArn"]["Description"] == (
            f"GitHub environment {READER[stage]}: SOURCE_READ_ROLE_ARN"
        )


@pytest.mark.parametrize("stage", STAGES)
def test_it_deploys_with_the_administrators_credentials_not_ci_s_roles(ci_access, stage):
    """So the account's CloudFormation execution policy, CI's ceiling, may deny changes to CI's access."""
    manifest = json.loads((ci_access(stage).outdir / "manifest.json").read_text())
    properties = manifest["artifacts"][f"tfhub-serving-{stage}-ci-access"]["properties"]
    assert "assumeRoleArn" not in properties and "cloudFormationExecutionRoleArn" not in properties
    assert properties["terminationProtection"] is True


def test_every_variable_the_workflow_reads_is_an_output(ci_access):
    workflow = (ROOT / ".github" / "workflows" / "deliver.yml").read_text()
    read = set(re.findall(r"\$\{\{ vars\.(\w+) \}\}", workflow))
    named = {
        match
        for stage in STAGES
        for output in ci_access(stage).template["Outputs"].values()
        for match in re.findall(r"\b([A-Z][A-Z_]+[A-Z])\b", output["Description"])
    }
    assert read and read <= named, read - named


def test_the_promotion_chain_is_the_workflows():
    workflow = (ROOT / ".github" / "workflows" / "deliver.yml").read_text()
    assert dict(re.findall(r"make promote FROM=(\w+) TO=(\w+)", workflow)) == PROMOTES_TO
    # Each stage's job runs in the GitHub environment of its name: the OIDC subject's.
    for stage in STAGES:
        assert re.search(rf"^  {stage}:\n(?:    .*\n)*?    environment: {stage}\n", workflow, re.MULTILINE), stage


# --- the gates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_nag_passes(ci_access, stage):
    # Synthesis raised on any unacknowledged finding; the report says the same.
    report = json.loads((ci_access(stage).outdir / "validation-report.json").read_text())
    assert all(p["summary"]["status"] == "success" for p in report["pluginReports"])


def test_the_nag_gate_bites(tmp_path):
    app = app_with(tmp_path, **stage_context("prod"))
    stack = build(app, ENVIRON)
    stack.node.find_child("DeployRole").role.add_to_policy(iam.PolicyStatement(actions=["s3:Get*"], resources=["*"]))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


@pytest.mark.parametrize("stage", STAGES)
def test_checkov_finds_nothing(ci_access, stage):
    report = checkov(ci_access(stage).outdir)
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["resource_count"] > 0
    assert [(f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]] == []
    assert report["results"]["skipped_checks"] == []


def test_cfn_lint_finds_no_errors(ci_access):
    result = run_cfn_lint([ci_access(stage).path for stage in STAGES])
    # Exit code bits: 2 = errors, 4 = warnings, 8 = informational; 1 = crashed.
    assert result.returncode == 0, result.stdout + result.stderr


# --- bad context ----------------------------------------------------------------------------------

BAD_CONTEXT = [
    ({"stage": None}, "stage: missing; pass -c stage=NAME, one of: dev, prod, staging"),
    ({"stage": "qa"}, "stage: 'qa' is not declared; allowed: dev, prod, staging"),
    ({"github_repo": None}, "github_repo: missing;"),
    ({"github_repo": "octo-repo"}, "github_repo: 'octo-repo' is not allowed; expected OWNER/REPO"),
    ({"github_repo": "octo-org/*"}, "github_repo: 'octo-org/*' is not allowed"),
    ({"source_account": None}, "source_account: missing; stage staging promotes from dev"),
    (
        {"source_account": "1234"},
        "source_account: '1234' is not allowed; expected the 12-digit account id of stage dev",
    ),
    (
        {"stage": "dev", "source_account": None, "next_account": "444444444444"},
        "next_account: '444444444444' is not allowed; cdk.json's stages.staging.account says '222222222222'",
    ),
    ({"stage": "dev"}, "source_account: not allowed; stage dev promotes from no stage (dev -> staging -> prod)"),
    (
        {"stage": "prod", "source_account": None, "next_account": "444444444444"},
        "next_account: not allowed; stage prod is promoted to no stage",
    ),
    (
        {"oidc_provider_arn": "arn:aws:iam::222222222222:oidc-provider/gitlab.com"},
        "oidc_provider_arn: 'arn:aws:iam::222222222222:oidc-provider/gitlab.com' is not allowed; expected",
    ),
    (
        {"oidc_provider_arn": f"arn:aws:iam::333333333333:oidc-provider/{GITHUB}"},
        f"oidc_provider_arn: 'arn:aws:iam::333333333333:oidc-provider/{GITHUB}' is not allowed; it belongs to "
        "account 333333333333, the stage's account is 222222222222",
    ),
    ({"bootstrap_qualifier": "not valid!"}, "bootstrap_qualifier: 'not valid!' is not allowed;"),
]


@pytest.mark.parametrize(
    ("change", "message"), BAD_CONTEXT, ids=[m.split(":")[0] + "-" + str(i) for i, (_, m) in enumerate(BAD_CONTEXT)]
)
def test_a_bad_context_value_fails_in_one_line_naming_the_key(change, message):
    context = {**cdk_json_context(), **stage_context("staging"), **change}
    with pytest.raises(ConfigError) as error:
        load_access_settings(
            {k: v for k, v in context.items() if v is not None}, default_account=DEV_ACCOUNT, default_region=DEV_REGION
        )
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(message.split(":")[0] + ":")


def test_the_cli_says_a_bad_value_in_one_line_and_writes_nothing(tmp_path):
    result = subprocess.run(
        [
            str(ROOT / "node_modules" / ".bin" / "cdk"),
            "synth",
            "--app",
            f"{sys.executable} -m account_setup.app",
            "-o",
            str(tmp_path / "out"),
            "-c",
            "stage=staging",
            "-c",
            "github_repo=octo-repo",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "Configuration error" in line]
    assert errors == [
        "Configuration error: github_repo: 'octo-repo' is not allowed; expected OWNER/REPO exactly "
        "as GitHub spells it (letters, digits, '-' in OWNER; letters, digits, '.', '_', '-' in REPO)"
    ]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("out/*.template.json"))


def test_the_cli_synthesizes_a_stage(tmp_path):
    result = subprocess.run(
        [
            str(ROOT / "node_modules" / ".bin" / "cdk"),
            "synth",
            "--quiet",
            "--app",
            f"{sys.executable} -m account_setup.app",
            "-o",
            str(tmp_path / "out"),
            "-c",
            "stage=prod",
            "-c",
            f"github_repo={REPO}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.glob("out/*.template.json")] == ["tfhub-serving-prod-ci-access.template.json"]
