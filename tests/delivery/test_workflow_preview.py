"""The prod-preview job's diff step, run with bash -e as the runner runs it, with the
pinned CDK CLI against moto as prod's account: what prod's reviewers read in the
run's summary, and that a diff it cannot compute never fails the run."""

from __future__ import annotations

import re

import pytest

from tests.account_setup.world import PROD_STACKS, prod_account
from tests.delivery.workflow_expressions import context, interpolate
from tests.delivery.workflow_runner import run_step, step

READ_TEMPLATES = ["cloudformation:DescribeStacks", "cloudformation:GetTemplate"]


@pytest.fixture
def preview(synthesized, tmp_path):
    """Runs the step with the credentials step's `outcome` and AWS settings; returns
    (succeeded, summary)."""
    assembly = str(synthesized("prod").outdir)

    def run(outcome: str, aws: dict[str, str], **overrides: str) -> tuple[bool, str]:
        state = {**context(), "steps": {"credentials": {"outcome": outcome}}}
        step_env = {k: interpolate(str(v), state) for k, v in step("prod-preview", "diff")["env"].items()}
        env = {**step_env, **aws, "ASSEMBLY": assembly, "RUNNER_TEMP": str(tmp_path), "HOME": str(tmp_path)}
        succeeded, _, summary = run_step("prod-preview", "diff", state, tmp_path, {**env, **overrides})
        return succeeded, summary

    return run


def fenced(summary: str) -> list[str]:
    """The lines of the summary's one fenced block."""
    (block,) = re.findall(r"^(`{3,})\n(.*?)^\1$", summary, flags=re.M | re.S)
    return block[1].splitlines()


def test_the_reviewers_read_what_the_deploy_changes_in_both_prod_stacks(preview):
    with prod_account(READ_TEMPLATES) as credentials:
        succeeded, summary = preview("success", credentials)
    assert succeeded
    assert summary.startswith("### Prod: what this run's deploy changes")
    assert "Not computed" not in summary
    diff = "\n".join(fenced(summary))
    assert all(f"Stack {name}" in diff for name in PROD_STACKS)
    assert "Number of stacks with differences: 2" in diff


def test_a_long_diff_is_cut_in_the_summary_and_says_so(preview):
    with prod_account(READ_TEMPLATES) as credentials:
        succeeded, summary = preview("success", credentials, SUMMARY_LINES="5")
    assert succeeded
    assert len(fenced(summary)) == 5
    assert "(The first 5 lines; the whole diff is in this job's log.)" in summary


def test_a_diff_the_role_cannot_read_says_so_and_does_not_fail_the_run(preview):
    with prod_account(["cloudformation:DescribeStacks"]) as credentials:
        succeeded, summary = preview("success", credentials)
    assert succeeded
    assert "**Not computed**: cdk diff exited with 1; its output:" in summary
    assert "not authorized to perform: cloudformation:GetTemplate" in "\n".join(fenced(summary))


def test_without_credentials_no_diff_runs_and_the_summary_says_so(preview):
    # The credentials step failed (continue-on-error): the diff step is told, and tries nothing.
    succeeded, summary = preview("failure", {})
    assert succeeded
    assert "**Not computed**: the preview role's credentials could not be had" in summary
    assert "```" not in summary
