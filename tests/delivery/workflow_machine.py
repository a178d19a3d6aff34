"""The hosted runner a job runs on: what one run's jobs share (`Runner`), the
environment a step starts from, its shell, and the actions the delivery workflow
uses, played for the job (what each does to it, no network). AWS is whatever
`Runner.aws_endpoint_url` serves (a moto server)."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

import boto3

from rehearsal.user import copy_project


@dataclasses.dataclass(frozen=True)
class Runner:
    """What one workflow run's jobs share: a directory (their workspaces, the run's
    artifact storage, the runner's home), the commit, and the endpoint every AWS
    call goes to (a moto server; None: no AWS at all)."""

    directory: pathlib.Path
    aws_endpoint_url: str | None = None
    sha: str = "c" * 40

    def github(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "token": "github-token",
            "event_name": "push",
            "ref": "refs/heads/main",
            "repository": "org/repo",
            "run_id": "4242",
            "run_attempt": "1",
        }

    @property
    def artifacts(self) -> pathlib.Path:
        return self.directory / "artifacts"


class StepFailed(Exception):
    """An action failed the step; the message is what it logs."""


# No test waits longer on one step, whatever its `timeout-minutes`.
_STEP_SECONDS = 300
# Not a runner's: the make running these tests, this machine's AWS, CDK and CI settings.
_NOT_A_RUNNERS = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "CI")
_NOT_A_RUNNERS_PREFIXES = ("AWS_", "CDK_", "GITHUB_", "RUNNER_", "ACTIONS_")


def machine_environment(runner: Runner, home: pathlib.Path, workspace: pathlib.Path) -> dict[str, str]:
    """A hosted runner's environment: this machine's tools on PATH, none of its
    settings, GitHub's variables, AWS at the emulator with no credentials yet."""
    mine = {
        k: v for k, v in os.environ.items() if k not in _NOT_A_RUNNERS and not k.startswith(_NOT_A_RUNNERS_PREFIXES)
    }
    github = runner.github()
    return {
        **mine,
        "HOME": str(home),
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": github["sha"],
        "GITHUB_REF": github["ref"],
        "GITHUB_EVENT_NAME": github["event_name"],
        "GITHUB_REPOSITORY": github["repository"],
        "GITHUB_RUN_ID": github["run_id"],
        "GITHUB_RUN_ATTEMPT": github["run_attempt"],
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_TEMP": str(home),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        **({"AWS_ENDPOINT_URL": runner.aws_endpoint_url} if runner.aws_endpoint_url else {}),
    }


_SHELLS: dict[str | None, list[str]] = {
    None: ["bash", "-e"],
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"],
}


def run_script(
    script: str, shell: str | None, files: pathlib.Path, workspace: pathlib.Path, environment: Mapping[str, str]
) -> tuple[bool, str]:
    """The script as GitHub runs it ("jobs.<job_id>.steps[*].shell"): unspecified,
    `bash -e {0}`; `shell: bash`, `bash --noprofile --norc -eo pipefail {0}`."""
    path = files / "script.sh"
    path.write_text(script)
    assert shell in _SHELLS, f"the runner knows no shell {shell!r}"
    command = [*_SHELLS[shell], str(path)]
    try:
        result = subprocess.run(
            command,
            cwd=workspace,
            env=dict(environment),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=_STEP_SECONDS,
        )
    except subprocess.TimeoutExpired as error:
        return False, f"{error.output or ''}\n(timed out after {_STEP_SECONDS} s)"
    return result.returncode == 0, result.stdout


def run_action(
    uses: str, inputs: dict[str, str], environment: dict[str, str], workspace: pathlib.Path, runner: Runner
) -> tuple[bool, str]:
    """The action `uses` names (any pinned version), played for the job: True and
    its log, or False and the error it fails the step with."""
    action = uses.split("@")[0]
    assert action in _ACTIONS, f"the runner does not know the action {action}"
    try:
        return True, _ACTIONS[action](inputs, environment, workspace, runner)
    except StepFailed as error:
        return False, f"Error: {error}"


def _checkout(inputs: dict[str, str], environment: dict[str, str], workspace: pathlib.Path, runner: Runner) -> str:
    """The commit under test is this checkout: the project copied into the (empty)
    workspace as the rehearsal copies it, tool folders linked, no `.git`."""
    workspace.rmdir()
    copy_project(workspace)
    return f"project copied into {workspace}"


def _setup(inputs: dict[str, str], environment: dict[str, str], workspace: pathlib.Path, runner: Runner) -> str:
    """setup-python and setup-node: the project's installed venv and Node.js are already on PATH."""
    return "the project's installed tools stand in"


def _configure_aws_credentials(
    inputs: dict[str, str], environment: dict[str, str], workspace: pathlib.Path, runner: Runner
) -> str:
    """aws-actions/configure-aws-credentials with OIDC (its README): assume
    `role-to-assume` with a web identity for `role-duration-seconds` (default one
    hour), fail unless the account is one of `allowed-account-ids` (when given),
    export the credentials and AWS_REGION and AWS_DEFAULT_REGION to later steps.
    moto's STS gives credentials in the role's account."""
    endpoint = environment.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise StepFailed("this runner reaches AWS only through an emulator, and none was given")
    region, role = inputs.get("aws-region", ""), inputs.get("role-to-assume", "")
    if not re.fullmatch(r"[a-z0-9-]+", region):
        raise StepFailed(f"Region is not valid: {region!r}")
    if not role:
        raise StepFailed("Credentials could not be loaded, please check your action inputs")
    sts = boto3.client("sts", region_name=region, endpoint_url=endpoint)
    credentials = sts.assume_role_with_web_identity(
        RoleArn=role,
        RoleSessionName=inputs.get("role-session-name") or "GitHubActions",
        WebIdentityToken="github-oidc-token",
        DurationSeconds=int(inputs.get("role-duration-seconds") or 3600),
    )["Credentials"]
    keys = {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }
    account = boto3.client(
        "sts",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=keys["AWS_SESSION_TOKEN"],
    ).get_caller_identity()["Account"]
    allowed = [a.strip() for a in inputs.get("allowed-account-ids", "").split(",") if a.strip()]
    if allowed and account not in allowed:
        raise StepFailed(f"The account ID of the provided credentials ({account}) is not in 'allowed-account-ids'")
    with open(environment["GITHUB_ENV"], "a") as exports:
        for name, value in {**keys, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}.items():
            exports.write(f"{name}={value}\n")
    return f"Authenticated as {role} in account {account}"


def _upload_artifact(
    inputs: dict[str, str], environment: dict[str, str], workspace: pathlib.Path, runner: Runner
) -> str:
    """actions/upload-artifact (its README): the files `path` matches, relative to
    the least common ancestor of its search paths (a wildcard's: the folder before
    it); an artifact's name is taken once per run."""
    name = inputs.get("name") or "artifact"
    target = runner.artifacts / name
    if target.exists():
        raise StepFailed(f"an artifact named {name} already exists in this run")
    roots, files = [], []
    for pattern in filter(None, (line.strip() for line in inputs["path"].splitlines())):
        literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
        search = workspace / (literal if literal == pattern else literal.rpartition("/")[0])
        roots.append(search if search.is_dir() else search.parent)
        for match in workspace.glob(pattern):
            files += [p for p in match.rglob("*") if p.is_file()] if match.is_dir() else [match]
    if not files:
        if inputs.get("if-no-files-found") == "error":
            raise StepFailed(f"No files were found with the provided path: {inputs['path']}")
        return f"No files were found with the provided path: {inputs['path']}. No artifacts will be uploaded."
    root = pathlib.Path(os.path.commonpath(roots))
    for path in files:
        (target / path.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / path.relative_to(root))
    return f"uploaded {len(files)} files as {name}"


def _download_artifact(
    inputs: dict[str, str], environment: dict[str, str], workspace: pathlib.Path, runner: Runner
) -> str:
    """actions/download-artifact (its README) by name, into `path` (default: the workspace)."""
    source = runner.artifacts / inputs["name"]
    if not source.is_dir():
        raise StepFailed(f"Artifact not found for name: {inputs['name']}")
    target = workspace / inputs.get("path", ".")
    shutil.copytree(source, target, dirs_exist_ok=True)
    return f"downloaded {inputs['name']} into {target}"


_ACTIONS: dict[str, Callable[[dict[str, str], dict[str, str], pathlib.Path, Runner], str]] = {
    "actions/checkout": _checkout,
    "actions/setup-python": _setup,
    "actions/setup-node": _setup,
    "aws-actions/configure-aws-credentials": _configure_aws_credentials,
    "actions/upload-artifact": _upload_artifact,
    "actions/download-artifact": _download_artifact,
}
