"""The workflow's scripts that carry the tested digest, run with bash -e against moto
and the real make targets (scenarios 1, 2 and 6)."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from tests.conftest import ROOT, moto_server
from tests.delivery.workflow_runner import context, evaluate, jobs, run_step

GOOD_DIGEST = "ab" * 32


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
    assert evaluate(jobs()["prod-preview"]["if"], gate) is current  # nothing to preview either


@pytest.mark.parametrize(("head", "current"), [("c" * 40, True), ("d" * 40, False)])
def test_a_run_that_went_stale_while_waiting_for_approval_deploys_nothing(head, current, tmp_path):
    """Scenario 6 after the gate: the approved job checks main's head again first;
    a stale run fails there, so neither the promotion nor its rollback runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(f"#!/bin/sh\necho {head}\n")
    (bin_dir / "gh").chmod(0o755)
    result, _, summary = run_step("prod", "still-current", context(), tmp_path, path_prefix=f"{bin_dir}:")
    assert (result.returncode == 0) is current, result.stderr
    assert ("stopped, stale" in summary) is not current
    steps = jobs()["prod"]["steps"]
    assert steps[0].get("id") == "still-current"  # before anything else, credentials included
    if not current:
        assert "while this run waited for approval: nothing was deployed" in result.stderr
        after = {**context(), "status": "failure", "steps": {"promote": {"outcome": "skipped"}}}
        rollback = next(s for s in steps if "RECORD=last-verified" in s.get("run", ""))
        assert evaluate(rollback["if"], after) is False
