"""The account setup's stacks synthesized per stage, and the helpers its tests share."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import urllib.request
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import boto3

from account_setup.app import build
from tests.conftest import DEV_REGION, cdk_json_context, moto_server
from tests.iam_simulation import ACCOUNT, simulate

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


def deploy_role(synth: Synthesized) -> tuple[str, dict]:
    found = synth.role("-github-deploy")
    assert found is not None
    return found


def role_arn(stage: str, kind: str) -> str:
    return f"arn:aws:iam::{ACCOUNTS[stage]}:role/tfhub-serving-{stage}-{kind}"


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def web_identity_decisions(
    synth: Synthesized, tokens: list[tuple[str, str, str]], kind: str = "github-deploy"
) -> list[str]:
    """IAM's decision on AssumeRoleWithWebIdentity of the role `<project>-<stage>-<kind>`
    for (provider ARN, sub, aud) tokens.

    Through `tests/iam_simulate_web_identity.mjs`: the project's `simulate` helper
    drops the `token.actions.githubusercontent.com:sub`/`:aud` keys (iam-simulate's
    data does not list them for the action), so it would deny every token."""
    found = synth.role(f"-{kind}")
    assert found is not None, kind
    trust = synth.resolved(found[1]["AssumeRolePolicyDocument"])
    simulations = [
        {
            "identityPolicies": [],
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
            "resourcePolicy": trust,
            "request": {
                "principal": provider,
                "action": "sts:AssumeRoleWithWebIdentity",
                "resource": {"resource": role_arn(synth.stage, kind), "accountId": ACCOUNTS[synth.stage]},
                "contextVariables": {f"{GITHUB}:sub": sub, f"{GITHUB}:aud": aud},
            },
        }
        for provider, sub, aud in tokens
    ]
    return simulate(simulations, "iam_simulate_web_identity.mjs")


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


PROD_STACKS = ("tfhub-serving-prod-storage", "tfhub-serving-prod-serving")


@contextlib.contextmanager
def prod_account(actions: list[str]) -> Iterator[dict[str, str]]:
    """moto as prod's account (cdk.json's account and region) holding prod's two stacks,
    a placeholder template each, with IAM enforced; yields the environment of
    credentials allowed `actions` and nothing else, for the CDK CLI.

    moto checks a CloudFormation call's action, not its stack (it authorizes '*'):
    which stacks is for IAM simulation to say."""
    region = REGIONS["prod"]
    with moto_server(MOTO_ACCOUNT_ID=ACCOUNTS["prod"]) as url:
        admin = {"endpoint_url": url, "aws_access_key_id": "admin", "aws_secret_access_key": "admin"}
        cloudformation = boto3.client("cloudformation", region_name=region, **admin)
        placeholder = {"Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
        for name in PROD_STACKS:
            cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(placeholder))
        iam = boto3.client("iam", region_name="us-east-1", **admin)
        iam.create_user(UserName="preview")
        allowed = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
        iam.put_user_policy(UserName="preview", PolicyName="preview", PolicyDocument=json.dumps(allowed))
        key = iam.create_access_key(UserName="preview")["AccessKey"]
        # moto's switch: from now on no call goes unauthorized (the setup's went unchecked).
        urllib.request.urlopen(
            urllib.request.Request(
                f"{url}/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}, method="POST"
            )
        ).close()
        yield {
            "AWS_ENDPOINT_URL": url,
            "AWS_REGION": region,
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }
