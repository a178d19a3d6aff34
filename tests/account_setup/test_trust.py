"""Who may assume the CI roles: GitHub tokens of the stage's environment, the next stage's deploy role."""

from __future__ import annotations

import pytest

from account_setup.app import build
from tests.account_setup.world import (
    ACCOUNTS,
    ENVIRON,
    GITHUB,
    READER,
    REPO,
    app_with,
    deploy_role,
    role_arn,
    stage_context,
    web_identity_decisions,
)
from tests.conftest import STAGES
from tests.iam_simulation import simulate


def trust(synth, role: dict) -> dict:
    (statement,) = synth.resolved(role["AssumeRolePolicyDocument"])["Statement"]
    return statement


def github_environment(synth, environment: str) -> dict:
    """The one trust statement a CI role has: GitHub's tokens for this repository's `environment`."""
    return {
        "Effect": "Allow",
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": synth.provider_arn},
        "Condition": {
            "StringEquals": {
                f"{GITHUB}:aud": "sts.amazonaws.com",
                f"{GITHUB}:sub": f"repo:{REPO}:environment:{environment}",
            }
        },
    }


@pytest.mark.parametrize("stage", STAGES)
def test_deploy_role_trusts_only_github_tokens_of_the_stages_environment(ci_access, stage):
    synth = ci_access(stage)
    role_id, role = deploy_role(synth)
    assert role["RoleName"] == f"tfhub-serving-{stage}-github-deploy"
    assert role["MaxSessionDuration"] == 3 * 3600
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    assert trust(synth, role) == github_environment(synth, stage)
    (provider,) = [r["Properties"] for r in synth.resources.values() if r["Type"] == "AWS::IAM::OIDCProvider"]
    assert provider == {"Url": f"https://{GITHUB}", "ClientIdList": ["sts.amazonaws.com"]}


@pytest.mark.parametrize("stage", STAGES)
def test_only_a_token_of_the_stages_environment_gets_in(ci_access, stage):
    synth = ci_access(stage)
    provider, aud = synth.provider_arn, "sts.amazonaws.com"
    other_stage = next(s for s in STAGES if s != stage)
    tokens = {
        "the stage's environment": (provider, f"repo:{REPO}:environment:{stage}", aud),
        "another environment": (provider, f"repo:{REPO}:environment:{other_stage}", aud),
        # prod's preview environment runs without reviewers: it must not deploy.
        "the stage's preview environment": (provider, f"repo:{REPO}:environment:{stage}-preview", aud),
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
    roles = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == 2  # the deploy role and the preview role
    assert all(role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Federated": arn} for role in roles)


def test_the_preview_role_trusts_only_github_tokens_of_prods_preview_environment(ci_access):
    synth = ci_access("prod")
    found = synth.role("-github-preview")
    assert found is not None
    _, role = found
    assert role["RoleName"] == "tfhub-serving-prod-github-preview"
    # IAM's default hour: the diff takes seconds, its job at most 20 minutes.
    assert "MaxSessionDuration" not in role
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    assert trust(synth, role) == github_environment(synth, "prod-preview")
    assert synth.template["Outputs"]["PreviewRoleArn"]["Description"] == (
        "GitHub environment prod-preview: AWS_PREVIEW_ROLE_ARN"
    )


def test_only_a_token_of_prods_preview_environment_gets_the_preview_role(ci_access):
    synth = ci_access("prod")
    provider, aud = synth.provider_arn, "sts.amazonaws.com"
    tokens = {
        "the preview environment": (provider, f"repo:{REPO}:environment:prod-preview", aud),
        "prod's environment": (provider, f"repo:{REPO}:environment:prod", aud),
        "staging's preview, were there one": (provider, f"repo:{REPO}:environment:staging-preview", aud),
        "a branch, no environment": (provider, f"repo:{REPO}:ref:refs/heads/main", aud),
        "a pull request": (provider, f"repo:{REPO}:pull_request", aud),
        "another repository": (provider, "repo:octo-org/fork:environment:prod-preview", aud),
        "another audience": (provider, f"repo:{REPO}:environment:prod-preview", "sigstore"),
        "another provider": (
            f"arn:aws:iam::{ACCOUNTS['prod']}:oidc-provider/gitlab.com",
            f"repo:{REPO}:environment:prod-preview",
            aud,
        ),
    }
    decisions = web_identity_decisions(synth, list(tokens.values()), kind="github-preview")
    assert dict(zip(tokens, decisions, strict=True)) == {
        name: "Allowed" if name == "the preview environment" else "ImplicitlyDenied" for name in tokens
    }


@pytest.mark.parametrize("stage", ["dev", "staging"])
def test_only_the_reviewed_stage_has_a_preview_role(ci_access, stage):
    """dev and staging deploy without a reviewer: nobody waits for a diff."""
    synth = ci_access(stage)
    assert synth.role("-github-preview") is None
    assert "PreviewRoleArn" not in synth.template["Outputs"]


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
