"""The CI access stack as a whole: outputs, gates (nag, checkov, cfn-lint), bad context, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from aws_cdk import aws_iam as iam

from account_setup.app import build
from account_setup.settings import PROMOTES_TO, REVIEWED_STAGE, load_access_settings
from stacks.stage.schema import ConfigError
from tests.account_setup.world import (
    ACCOUNTS,
    DEV_ACCOUNT,
    ENVIRON,
    GITHUB,
    READER,
    REGIONS,
    REPO,
    app_with,
    stage_context,
)
from tests.compliance.test_checkov import checkov
from tests.compliance.test_compliance import run_cfn_lint
from tests.conftest import DEV_REGION, ROOT, STAGES, cdk_json_context


@pytest.mark.parametrize("stage", STAGES)
def test_outputs_name_the_github_environment_variables(ci_access, stage):
    synth = ci_access(stage)
    outputs = synth.template["Outputs"]
    assert synth.path.name == f"tfhub-serving-{stage}-ci-access.template.json"
    assert outputs["DeployRoleArn"]["Description"] == f"GitHub environment {stage}: AWS_DEPLOY_ROLE_ARN"
    # prod's preview job reads prod's stacks: its environment takes prod's account and region.
    environments = "environments prod and prod-preview" if stage == "prod" else f"environment {stage}"
    assert outputs["AccountId"] == {
        "Description": f"GitHub {environments}: AWS_ACCOUNT_ID",
        "Value": ACCOUNTS[stage],
    }
    source_region = f"; environment {READER[stage]}: SOURCE_REGION" if stage in READER else ""
    assert outputs["Region"] == {
        "Description": f"GitHub {environments}: AWS_REGION{source_region}",
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
    # The one preview environment, the subject the preview role trusts, is the reviewed stage's.
    assert re.findall(r"^    environment: (\S+-preview)$", workflow, re.MULTILINE) == [f"{REVIEWED_STAGE}-preview"]


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
