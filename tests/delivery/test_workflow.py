"""The delivery workflow: actionlint clean, hardened as GitHub's guide asks, and its
logic run, not read: the `run:` scripts of the steps that carry the tested digest
execute with bash -e as a runner would (GITHUB_OUTPUT, the job's env, CI=true),
calling the real make targets against moto, and the `if:` conditions are
evaluated in the states that matter (failure, cancellation, a stale run)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
from typing import Any

import boto3
import pytest
import yaml

from tests.conftest import ROOT, moto_server

WORKFLOW = ROOT / ".github" / "workflows" / "deliver.yml"
ACTIONLINT = ROOT / ".venv" / "bin" / "actionlint"
DEPLOYING = ("dev", "staging", "prod")
GOOD_DIGEST = "ab" * 32


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def jobs() -> dict[str, dict]:
    return workflow()["jobs"]


def step(job: str, step_id: str) -> dict:
    (found,) = [s for s in jobs()[job]["steps"] if s.get("id") == step_id]
    return found


# --- GitHub's expression syntax, the subset the workflow uses ---------------------

_TOKEN = re.compile(r"\s*(&&|\|\||==|!=|!|\(|\)|'[^']*'|[A-Za-z_][\w-]*\(\)|[A-Za-z_][\w.-]*)")


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """Status functions, property paths (missing ones are ''), ==, !=, &&, ||, !,
    parentheses and 'strings', evaluated as GitHub documents them."""
    expression = expression.strip().removeprefix("${{").removesuffix("}}")
    python, position = [], 0
    while position < len(expression.rstrip()):
        match = _TOKEN.match(expression, position)
        assert match, f"cannot read {expression[position:]!r}"
        token, position = match.group(1), match.end()
        if token in ("&&", "||", "!"):
            python.append({"&&": " and ", "||": " or ", "!": " not "}[token])
        elif token in ("==", "!=", "(", ")") or token.startswith("'"):
            python.append(token)
        elif token.endswith("()"):
            python.append(
                repr(context["status"] == token[:-2] if token[:-2] in ("success", "failure", "cancelled") else True)
            )  # always()
        else:
            value: Any = context
            for part in token.split("."):
                value = value.get(part, "") if isinstance(value, dict) else ""
            python.append(repr(value))
    return eval("".join(python), {"__builtins__": {}})  # noqa: S307 - built from the tokens above


def interpolate(text: str, context: dict[str, Any]) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(evaluate(m.group(1), context)), text)


# --- one step, as a runner runs it ------------------------------------------------


def run_step(
    job: str,
    step_id: str,
    context: dict[str, Any],
    tmp_path: pathlib.Path,
    env: dict[str, str] | None = None,
    path_prefix: str = "",
) -> tuple[subprocess.CompletedProcess, dict, str]:
    """The step's script under `bash -e` (GitHub's default shell) in the project, with
    the job's env interpolated from `context`; returns the result, what it wrote to
    GITHUB_OUTPUT and to the job summary."""
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text(""), summary.write_text("")
    script = tmp_path / "step.sh"
    script.write_text(step(job, step_id)["run"])
    # A runner's shell: not inside the make that runs these tests, no AWS settings of this machine.
    shell = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS") and not k.startswith("AWS_")
    }
    job_env = {k: interpolate(str(v), context) for k, v in jobs()[job].get("env", {}).items()}
    runner = {
        "CI": "true",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SHA": context["github"]["sha"],
        "GITHUB_REPOSITORY": "org/repo",
        "PATH": path_prefix + shell["PATH"],
    }
    result = subprocess.run(
        ["bash", "-e", str(script)],
        cwd=ROOT,
        env={**shell, **runner, **job_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return result, outputs, summary.read_text()


def context(**needs_outputs: dict[str, str]) -> dict[str, Any]:
    return {
        "github": {"sha": "c" * 40, "token": "t", "event_name": "push", "ref": "refs/heads/main"},
        "vars": {},
        "needs": {job: {"outputs": outputs} for job, outputs in needs_outputs.items()},
        "status": "success",
        "steps": {},
    }


@pytest.fixture(scope="module")
def dev_account():
    """moto, holding dev's serving stack; yields a function that sets its TreeDigest output."""
    with moto_server() as url:
        cloudformation = boto3.client(
            "cloudformation",
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

        def serving(digest: str | None) -> dict[str, str]:
            try:
                cloudformation.delete_stack(StackName="tfhub-serving-dev-serving")
            except Exception:  # noqa: BLE001 - none yet
                pass
            if digest is not None:
                cloudformation.create_stack(
                    StackName="tfhub-serving-dev-serving",
                    TemplateBody=json.dumps(
                        {
                            "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                            "Outputs": {
                                "ArtifactLocation": {
                                    "Value": "s3://dev-bucket/artifacts/packaging/x/output/model.tar.gz"
                                },
                                "TreeDigest": {"Value": digest},
                            },
                        }
                    ),
                )
            return {
                "AWS_ENDPOINT_URL": url,
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            }

        yield serving


# --- static gates ----------------------------------------------------------------


def test_actionlint_passes():
    result = subprocess.run([str(ACTIONLINT), "-no-color", str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace("needs: [dev, build, prod-gate]", "needs: [dev, build, prod-gat]"))
    result = subprocess.run([str(ACTIONLINT), "-no-color", str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "prod-gat" in result.stdout


def test_pull_requests_test_and_synth_main_delivers():
    triggers = workflow().get("on") or workflow()[True]  # YAML 1.1 reads `on` as true
    assert set(triggers) == {"pull_request", "push"} and triggers["push"] == {"branches": ["main"]}
    flow = jobs()
    assert "if" not in flow["test"] and "if" not in flow["synth"]
    assert flow["dev"]["needs"] == ["test", "synth"]
    assert (flow["build"]["needs"], flow["staging"]["needs"], flow["prod-gate"]["needs"], flow["prod"]["needs"]) == (
        "dev",
        ["dev", "build"],
        ["dev", "staging"],
        ["dev", "build", "prod-gate"],
    )


def test_each_stages_assembly_is_built_once_without_credentials_and_deployed_as_built():
    flow = jobs()
    build = flow["build"]
    assert "environment" not in build and "permissions" not in build  # contents: read, no id-token
    assert [s["run"] for s in build["steps"] if "run" in s] == [
        "make assembly STAGE=staging",
        "make assembly STAGE=prod",
    ]
    (upload,) = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] == "cdk.out/assembly-*"
    for stage in ("staging", "prod"):
        steps = flow[stage]["steps"]
        (download,) = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/download-artifact@")]
        (credentials,) = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("aws-actions/")]
        assert download < credentials and steps[download]["with"] == {"name": "assemblies", "path": "cdk.out"}
        assert flow[stage]["env"]["ASSEMBLY"] == f"cdk.out/assembly-{stage}"


def test_every_action_is_pinned_by_commit_and_no_job_keeps_a_git_token():
    for name, job in jobs().items():
        for entry in job["steps"]:
            if "uses" in entry:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", entry["uses"]), (name, entry["uses"])
            if entry.get("uses", "").startswith("actions/checkout@"):
                assert entry["with"]["persist-credentials"] is False, name
    text = WORKFLOW.read_text()
    # Each pin says which release it is, for people and for the update bot.
    assert all(re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line) for line in text.splitlines() if "uses:" in line)
    assert "github-actions" in (ROOT / ".github" / "dependabot.yml").read_text()


def test_no_expression_is_pasted_into_a_script():
    """GitHub's hardening guide: values reach scripts through env, never `${{ }}` in run:."""
    for name, job in jobs().items():
        for entry in job["steps"]:
            assert "${{" not in entry.get("run", ""), (name, entry["run"])


def test_deploy_jobs_install_everything_before_credentials_exist():
    for name in DEPLOYING:
        steps = jobs()[name]["steps"]
        (credentials,) = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("aws-actions/")]
        assert {"run": "make deps"} in steps[:credentials], name
        after = [s["run"] for s in steps[credentials + 1 :]]
        # Only targets that need nothing beyond `deps`, already installed by then.
        for command in after:
            for target in re.findall(r"make (?:-s )?([a-z-]+)", command):
                assert target in ("deploy", "smoke", "digest", "promote"), (name, command)
                assert re.search(rf"^{target}: (promote-arguments )?deps$", (ROOT / "Makefile").read_text(), re.M)


def test_make_deps_leaves_the_later_targets_nothing_to_install():
    shell = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    # Once installed, `deps` only checks the interpreter: no pip, no npm.
    planned = subprocess.run(["make", "-n", "deps"], cwd=ROOT, env=shell, capture_output=True, text=True).stdout
    assert "pip install" not in planned and "npm ci" not in planned and "python" in planned


def test_each_session_outlasts_its_job_and_fits_the_roles_limit():
    """Scenario 3: an OIDC session cannot be refreshed, so it must outlive the job."""
    for name in DEPLOYING:
        job = jobs()[name]
        (credentials,) = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/")]
        options = credentials["with"]
        assert int(options["role-duration-seconds"]) >= 60 * job["timeout-minutes"], name
        assert int(options["role-duration-seconds"]) <= 3 * 3600  # the deploy role's MaxSessionDuration
        assert options["allowed-account-ids"] == "${{ vars.AWS_ACCOUNT_ID }}"
        assert "github.run_id" in options["role-session-name"]
    # Two blue/green cycles (the update and a rollback) fit in the promoting jobs.
    assert jobs()["staging"]["timeout-minutes"] >= 120 and jobs()["prod"]["timeout-minutes"] >= 120


@pytest.mark.parametrize(
    ("status", "promote", "rolls_back"),
    [
        ("failure", "failure", True),  # the deploy or the smoke test failed
        ("cancelled", "cancelled", True),  # a timeout or a person cancelled mid-deploy
        ("success", "success", False),
        ("failure", "skipped", False),  # an earlier step failed: nothing was deployed
    ],
)
def test_a_failed_or_cancelled_promotion_rolls_back_to_the_last_verified_state(status, promote, rolls_back):
    for stage in ("staging", "prod"):
        rollback = jobs()[stage]["steps"][-1]
        assert rollback["run"] == f"make promote TO={stage} RECORD=previous"
        state = {**context(), "status": status, "steps": {"promote": {"outcome": promote}}}
        assert evaluate(rollback["if"], state) is rolls_back


# --- the scripts, run ------------------------------------------------------------


def test_dev_hands_on_the_digest_it_serves(dev_account, tmp_path):
    result, outputs, _ = run_step("dev", "artifact", context(), tmp_path, dev_account(GOOD_DIGEST))
    assert result.returncode == 0, result.stderr
    assert outputs == {"digest": GOOD_DIGEST}


def test_a_failed_make_digest_fails_the_dev_job(dev_account, tmp_path):
    """Scenario 1: no digest must never become an empty one that switches the check off."""
    result, outputs, _ = run_step("dev", "artifact", context(), tmp_path, dev_account(None))
    assert result.returncode != 0 and outputs == {}
    assert "does not exist" in result.stderr


def test_a_hostile_digest_from_dev_is_refused_and_never_run(dev_account, tmp_path):
    """Scenario 2: dev's TreeDigest output is whatever dev's deployers made it."""
    hostile = "$(touch pwned-by-dev)"
    result, outputs, _ = run_step("dev", "artifact", context(), tmp_path, dev_account(hostile))
    assert result.returncode != 0 and outputs == {}
    assert not (ROOT / "pwned-by-dev").exists()


@pytest.mark.parametrize(
    "digest", ["", "$(touch pwned-by-dev)", "$(shell touch pwned-by-dev)", "x' ; touch pwned-by-dev ; '"]
)
def test_staging_refuses_an_empty_or_hostile_digest_before_any_aws_call(digest, tmp_path):
    """Scenarios 1 and 2 at the next job: the digest arrives as data and is checked
    for its form (make would run a `$(shell ...)` pasted on its command line)."""
    state = context(dev={"digest": digest})
    no_aws = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_REGION": "us-east-1"}
    result, _, _ = run_step("staging", "promote", state, tmp_path, no_aws)
    assert result.returncode != 0
    assert "is not a tree digest" in result.stderr
    assert not (ROOT / "pwned-by-dev").exists()


@pytest.mark.parametrize(("head", "current"), [("c" * 40, True), ("d" * 40, False)])
def test_a_stale_run_never_reaches_the_prod_approval(head, current, tmp_path):
    """Scenario 6: a newer commit on main (or a re-run of an old run) skips prod
    before anyone is asked to approve it. `gh` answers as GitHub's API would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(f"#!/bin/sh\necho {head}\n")
    (bin_dir / "gh").chmod(0o755)
    state = context(dev={"digest": GOOD_DIGEST})
    result, outputs, summary = run_step("prod-gate", "current", state, tmp_path, path_prefix=f"{bin_dir}:")
    assert result.returncode == 0, result.stderr
    assert outputs == {"current": "true" if current else "false"}
    assert GOOD_DIGEST in summary and ("skipped" in summary) is not current
    gate = {**state, "needs": {"prod-gate": {"outputs": outputs}}}
    assert "environment" not in jobs()["prod-gate"]  # it runs before the approval wait
    assert evaluate(jobs()["prod"]["if"], gate) is current
