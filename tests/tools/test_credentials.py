"""`make deploy`, `make diff` and `make destroy`'s access check refuses only
credentials the CDK CLI would fail with: one that may assume the bootstrap role
the CLI assumes for the command, or describe the stacks itself, passes.

Each principal is a moto user with one inline policy, its server checking IAM.
"""

from __future__ import annotations

import json

import boto3
import pytest

from tests.conftest import moto_server
from tools import cli, credentials

ACCOUNT, REGION = "222222222222", "us-east-1"
POLICIES = {
    "deployer": ("sts:AssumeRole", [credentials.bootstrap_role_arn("deploy", "aws", ACCOUNT, REGION, "hnb659fds")]),
    "looker": ("sts:AssumeRole", [credentials.bootstrap_role_arn("lookup", "aws", ACCOUNT, REGION, "hnb659fds")]),
    # moto authorizes CloudFormation calls on no resource ("*"), STS's on the role.
    "reader": ("cloudformation:DescribeStacks", ["*"]),
    # GetCallerIdentity needs no permission: this user may do nothing.
    "nobody": ("sts:GetCallerIdentity", ["*"]),
}


@pytest.fixture(scope="module")
def keys():
    # Every setup call (a user, its key and its policy) before moto starts checking.
    with moto_server(INITIAL_NO_AUTH_ACTION_COUNT=str(3 * len(POLICIES)), MOTO_ACCOUNT_ID=ACCOUNT) as url:
        iam = boto3.client(
            "iam", endpoint_url=url, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
        )
        found = {}
        for user, (action, resources) in POLICIES.items():
            iam.create_user(UserName=user)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            statement = {"Effect": "Allow", "Action": action, "Resource": resources}
            iam.put_user_policy(
                UserName=user,
                PolicyName="only",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
            )
            found[user] = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        yield url, found


@pytest.mark.parametrize(
    "user, command, passes",
    [
        ("deployer", "deploy", True),
        ("deployer", "destroy", True),
        # diff falls back from the lookup role to the deploy role.
        ("deployer", "diff", True),
        ("looker", "diff", True),
        ("looker", "deploy", False),
        # No bootstrap role, but the CLI goes on with credentials that may read the stacks (not deployed: fine).
        ("reader", "deploy", True),
        ("reader", "diff", True),
        ("nobody", "destroy", False),
    ],
)
def test_only_credentials_the_cli_cannot_use_are_refused(keys, monkeypatch, tmp_path, capsys, user, command, passes):
    url, found = keys
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"HOME": str(tmp_path), "AWS_ENDPOINT_URL": url, **found[user]}.items():
        monkeypatch.setenv(name, value)
    status = cli.run(credentials.main, ["--stage", "dev", "--command", command])
    errors = capsys.readouterr().err.splitlines()
    if passes:
        assert (status, errors) == (0, [])
        return
    assert status == 1 and len(errors) == 1, errors
    missing = "deploy-role" if command != "diff" else "lookup-role"
    assert errors[0].startswith(f"make {command} cannot reach stage dev's stacks as arn:aws:iam::{ACCOUNT}:user/")
    assert f"cdk-hnb659fds-{missing}-{ACCOUNT}-{REGION}" in errors[0]


def test_the_role_names_are_the_default_synthesizers():
    from aws_cdk import DefaultStackSynthesizer

    for kind, template in [
        ("deploy", DefaultStackSynthesizer.DEFAULT_DEPLOY_ROLE_ARN),
        ("lookup", DefaultStackSynthesizer.DEFAULT_LOOKUP_ROLE_ARN),
    ]:
        spelled = template.replace("${AWS::Partition}", "aws-cn").replace("${Qualifier}", "q1")
        spelled = spelled.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", "cn-north-1")
        assert credentials.bootstrap_role_arn(kind, "aws-cn", ACCOUNT, "cn-north-1", "q1") == spelled
    assert credentials.DEFAULT_QUALIFIER == DefaultStackSynthesizer.DEFAULT_QUALIFIER
