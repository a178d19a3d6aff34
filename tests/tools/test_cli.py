"""Every command-line tool ends an expected failure in one actionable line and exit code 1.

Each tool runs as `make` runs it (`python -m ...`, a fresh process, an empty
HOME) against moto's server for the states that need an AWS account, and the
same states with AWS_PROFILE naming a profile this machine lacks. The targets
that run the CDK CLI run as the README writes them (`make deploy STAGE=...`).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import boto3
import pytest
from botocore import exceptions as boto

from tests.conftest import ROOT, moto_server
from tools import cli

TOOLS = {
    "logs": ["tools.follow_logs", "--stage", "{stage}"],
    "digest": ["delivery.digest", "--stage", "{stage}"],
    "smoke": ["delivery.smoke", "--stage", "{stage}"],
    "promote": ["delivery.promote", "--from", "{stage}", "--to", "staging"],
    "rollback": ["delivery.promote", "--to", "{stage}", "--record", "previous"],
    "leftovers": ["delivery.leftovers", "--stage", "{stage}"],
    "status": ["delivery.status", "--stage", "{stage}"],
}
# Without usable credentials these stop in one line before the CDK CLI runs.
TARGETS = ("deploy", "diff", "destroy")
KEYS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
# Where the stack without outputs lives (dev's region is AWS_REGION's).
BARE_REGION = "eu-west-2"
# A rollback reads the target's bucket first: without its storage stack, nothing to read.
NO_STORAGE = (
    r"^Rollback stopped: No CloudFormation export tfhub-serving-dev-bucket-name: "
    r"deploy the target stage's storage first\.$"
)
DEPLOY_ROLE, LOOKUP_ROLE = (
    f"arn:aws:iam::222222222222:role/cdk-hnb659fds-{kind}-role-222222222222-us-east-1" for kind in ("deploy", "lookup")
)
MISSING_PROFILE = r"^AWS profile 'gone' \(from AWS_PROFILE or AWS_DEFAULT_PROFILE\) is not in this machine's AWS config"

EXPECTED = {
    "no credentials": {tool: r"^No AWS credentials found: set AWS_PROFILE" for tool in (*TOOLS, *TARGETS)},
    "broken config file": {
        tool: r"^The AWS config file cannot be read \(Unable to parse config file" for tool in TOOLS
    },
    "failing credential_process": {
        tool: r"^The AWS credentials could not be obtained \(.*credential_process" for tool in TOOLS
    },
    "wrong account": {
        tool: r"^Stage prod lives in account 333333333333, but the credentials in use are account "
        r"222222222222's"
        for tool in (*TOOLS, *TARGETS)
    },
    "unknown stage": {
        tool: r"^Configuration error: stage: 'qa' is not declared; allowed: dev, prod, staging$"
        for tool in (*TOOLS, *TARGETS)
    },
    "not deployed": {
        "logs": r"^Stage dev is neither deployed nor being deployed in us-east-1 "
        r"\(no stack tfhub-serving-dev-storage\)",
        "digest": r"^Stack tfhub-serving-dev-serving does not exist in us-east-1: that stage is not deployed there",
        "smoke": r"^Stack tfhub-serving-dev-serving does not exist in us-east-1: that stage is not deployed there",
        "promote": r"^Stack tfhub-serving-dev-serving does not exist in us-east-1: that stage is not deployed there",
        "rollback": NO_STORAGE,
    },
    "missing outputs": {
        "digest": r"^Stack tfhub-serving-dev-serving has no ArtifactLocation or TreeDigest output",
        "smoke": rf"^Stack tfhub-serving-dev-serving \({BARE_REGION}, CREATE_COMPLETE\) has no EndpointName, "
        "ArtifactLocation output",
        "promote": r"^Promotion stopped, nothing changed: Stack tfhub-serving-dev-serving has no ArtifactLocation "
        "or TreeDigest output",
        "rollback": NO_STORAGE,
    },
    "access denied": {
        "logs": r"^AWS refused DescribeStacks \(AccessDenied: User: .* is not authorized",
        "digest": r"^AWS refused DescribeStacks \(AccessDenied",
        "smoke": r"^AWS refused DescribeStacks \(AccessDenied",
        "promote": r"^AWS refused DescribeStacks \(AccessDenied",
        "leftovers": r"^AWS refused ListEndpoints \(403: .*not authorized to perform: sagemaker:ListEndpoints",
        "status": r"^AWS refused DescribeStacks \(AccessDenied",
        "rollback": r"^AWS refused DescribeStacks \(AccessDenied: .*not authorized to perform: "
        r"cloudformation:DescribeStacks",
        # The CLI would try the bootstrap's roles, then these credentials themselves (tools/credentials.py).
        **{
            target: rf"^make {target} cannot reach stage dev's stacks as arn:aws:iam::222222222222:user/nobody: "
            rf"it can assume no CDK bootstrap role \(sts:AssumeRole on {roles}; .* and may not "
            r"cloudformation:DescribeStacks on tfhub-serving-dev-storage itself\.$"
            for target, roles in [
                ("deploy", DEPLOY_ROLE),
                ("destroy", DEPLOY_ROLE),
                ("diff", f"{LOOKUP_ROLE} or {DEPLOY_ROLE}"),
            ]
        },
    },
}


@pytest.fixture(scope="module")
def accounts(tmp_path_factory):
    """An account with one serving stack that has no outputs, and one whose
    credentials are allowed nothing."""
    # staging's account, as cdk.json names it: tools check the credentials' account.
    with (
        moto_server(MOTO_ACCOUNT_ID="222222222222") as open_url,
        moto_server(INITIAL_NO_AUTH_ACTION_COUNT="2", MOTO_ACCOUNT_ID="222222222222") as strict_url,
    ):
        boto3.client("cloudformation", endpoint_url=open_url, region_name=BARE_REGION, **_keys()).create_stack(
            StackName="tfhub-serving-dev-serving",
            TemplateBody=json.dumps({"Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}),
        )
        iam = boto3.client("iam", endpoint_url=strict_url, region_name="us-east-1", **_keys())
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        yield {
            "open": {"AWS_ENDPOINT_URL": open_url, **KEYS},
            "strict": {
                "AWS_ENDPOINT_URL": strict_url,
                "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            },
            "home": str(tmp_path_factory.mktemp("home")),
        }


def _keys():
    return {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def state_env(state: str, accounts) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "HOME": accounts["home"], "AWS_EC2_METADATA_DISABLED": "true"}
    if state == "broken config file":
        env["AWS_CONFIG_FILE"] = str(_write(accounts, "broken", "[default\nregion = eu-west-1\n"))
    elif state == "failing credential_process":
        env["AWS_CONFIG_FILE"] = str(_write(accounts, "process", "[default]\ncredential_process = false\n"))
    if state in ("unknown stage", "not deployed", "wrong account"):
        env.update(accounts["open"])
    elif state == "missing outputs":
        env.update(accounts["open"], AWS_REGION=BARE_REGION)
    elif state == "access denied":
        env.update(accounts["strict"])
    return env


def _write(accounts, name: str, text: str):
    path = pathlib.Path(accounts["home"]) / name
    path.write_text(text)
    return path


def run_tool(tool: str, stage: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    if tool in TARGETS:
        command = ["make", "--no-print-directory", "-s", tool, f"STAGE={stage}"]
    else:
        command = [sys.executable, "-m", *[arg.format(stage=stage) for arg in TOOLS[tool]]]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


CASES = [(state, tool) for state, tools in EXPECTED.items() for tool in tools]


@pytest.mark.parametrize("profile", ["", "gone"], ids=["no profile", "missing profile"])
@pytest.mark.parametrize("state, tool", CASES, ids=[f"{tool}: {state}" for state, tool in CASES])
def test_one_line_and_exit_code_1(accounts, state, tool, profile):
    env = state_env(state, accounts)
    if profile:
        env["AWS_PROFILE"] = profile
    stage = {"unknown stage": "qa", "wrong account": "prod"}.get(state, "dev")
    result = run_tool(tool, stage, env)
    expected = EXPECTED[state][tool]
    # The configuration is read before any AWS call; a broken config file is found
    # before the profile is looked for in it; everything else asks for the profile first.
    if profile and state not in ("unknown stage", "broken config file"):
        expected = MISSING_PROFILE
    errors = result.stderr.strip().splitlines()
    if tool in TARGETS:
        # make's own line follows the tool's exit code 1, and make exits 2; nothing else
        # was printed (no deploy "anyway"), the CLI never ran.
        assert result.returncode == 2 and not result.stdout, result.stdout + result.stderr
        assert re.fullmatch(rf"make: \*\*\* \[Makefile:\d+: {tool}\] Error 1", errors.pop())
    else:
        assert result.returncode == 1, result.stdout + result.stderr
    assert len(errors) == 1 and re.search(expected, errors[0]), result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_stage_that_was_never_deployed_has_nothing_left(accounts):
    result = run_tool("leftovers", "dev", state_env("not deployed", accounts))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Nothing of stage dev is left in SageMaker (us-east-1)."


def test_debug_shows_the_traceback(accounts):
    env = state_env("not deployed", accounts)
    args = [arg.format(stage="dev") for arg in TOOLS["digest"]]
    flag = subprocess.run([sys.executable, "-m", *args, "--debug"], cwd=ROOT, env=env, capture_output=True, text=True)
    # As the README writes it.
    shell = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    variable = subprocess.run(
        ["make", "digest", "STAGE=dev", "DEBUG=1"], cwd=ROOT, env={**shell, **env}, capture_output=True, text=True
    )
    for result in (flag, variable):
        assert result.returncode != 0
        assert "Traceback (most recent call last)" in result.stderr
        assert "UserError: Stack tfhub-serving-dev-serving does not exist" in result.stderr


@pytest.mark.parametrize(
    "error, line",
    [
        (
            boto.ProfileNotFound(profile="p"),
            "AWS profile 'p' (from AWS_PROFILE or AWS_DEFAULT_PROFILE) is not in this machine's AWS config",
        ),
        (boto.NoCredentialsError(), "No AWS credentials found"),
        (boto.TokenRetrievalError(provider="sso", error_msg="expired"), "The AWS SSO session has expired"),
        (
            boto.ClientError({"Error": {"Code": "ExpiredToken", "Message": "old"}}, "GetObject"),
            "AWS refused GetObject (ExpiredToken: old)",
        ),
        (
            boto.ClientError({"Error": {"Code": "Throttling", "Message": "slow\n  down"}}, "DescribeStacks"),
            "AWS DescribeStacks failed (Throttling: slow down).",
        ),
        (boto.EndpointConnectionError(endpoint_url="https://x"), "Cannot reach AWS"),
    ],
)
def test_expected_failures_are_explained_in_one_line(error, line):
    explained = cli.explain(error)
    assert explained.startswith(line) and "\n" not in explained


def test_an_unexpected_error_keeps_its_traceback():
    def broken(argv):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        cli.run(broken, [])
    assert cli.explain(KeyError("a bug")) is None


def test_a_stage_without_its_region_is_one_line_for_every_tool(tmp_path, accounts):
    from rehearsal.user import copy_project

    project = tmp_path / "project"
    copy_project(project)
    document = json.loads((project / "cdk.json").read_text())
    document["context"]["stages"]["staging"]["region"] = None
    (project / "cdk.json").write_text(json.dumps(document))
    for tool, args in TOOLS.items():
        command = [arg.format(stage="staging") for arg in args]
        if tool == "promote":
            command = ["delivery.promote", "--from", "dev", "--to", "staging"]
        result = subprocess.run(
            [sys.executable, "-m", *command],
            cwd=project,
            env=state_env("not deployed", accounts),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip() == "Configuration error: stages.staging.region: missing; set it in cdk.json"


def test_through_make_the_tools_line_is_followed_only_by_makes_own(accounts):
    # A user's shell: not inside another make (`make test` runs this).
    shell = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env = {**shell, **state_env("not deployed", accounts)}
    for target in ("digest", "smoke", "logs"):
        result = subprocess.run(
            ["make", "--no-print-directory", "-s", target, "STAGE=dev"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 2, result.stderr
        assert lines[1].startswith("make: *** [Makefile:") and "Traceback" not in result.stderr


@pytest.mark.parametrize("value, on", [(None, False), ("", False), ("0", False), ("1", True), ("yes", True)])
def test_a_switch_set_to_0_is_off_like_an_unset_one(value, on):
    assert cli.switched_on(value) is on
    assert cli.debugging([], {} if value is None else {"DEBUG": value}) is on
