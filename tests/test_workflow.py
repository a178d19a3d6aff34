"""The delivery workflow: lints clean with actionlint and runs the make targets a person would."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "deliver.yml"
ACTIONLINT = pathlib.Path(sys.executable).with_name("actionlint")


def actionlint(path: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(ACTIONLINT), "-no-color", str(path)], capture_output=True, text=True)


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def runs(job: str) -> list[str]:
    return [step["run"] for step in workflow()["jobs"][job]["steps"] if "run" in step]


def test_actionlint_passes():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace("needs: [dev, staging]", "needs: [dev, stagging]"))
    result = actionlint(broken)
    assert result.returncode != 0
    assert "stagging" in result.stdout


def test_pull_requests_test_and_synth_main_delivers():
    triggers = workflow().get("on") or workflow()[True]  # YAML 1.1 reads `on` as true
    assert set(triggers) == {"pull_request", "push"}
    assert triggers["push"] == {"branches": ["main"]}
    jobs = workflow()["jobs"]
    assert "if" not in jobs["test"] and "if" not in jobs["synth"]
    assert jobs["dev"]["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert jobs["dev"]["needs"] == ["test", "synth"]
    assert (jobs["staging"]["needs"], jobs["prod"]["needs"]) == ("dev", ["dev", "staging"])


@pytest.mark.parametrize(
    ("job", "commands"),
    [
        ("test", ["make test"]),
        ("synth", ["make synth"]),
        ("dev", ["make deploy STAGE=dev APPROVAL=never", "make smoke STAGE=dev",
                 'echo "digest=$(make -s digest STAGE=dev)" >> "$GITHUB_OUTPUT"']),
        ("staging", ['make promote FROM=dev TO=staging DIGEST="${{ needs.dev.outputs.digest }}" '
                     'SOURCE_ROLE_ARN="${{ vars.SOURCE_READ_ROLE_ARN }}"',
                     "make smoke STAGE=staging", "make promote TO=staging RECORD=previous"]),
        ("prod", ['make promote FROM=staging TO=prod DIGEST="${{ needs.dev.outputs.digest }}" '
                  'SOURCE_ROLE_ARN="${{ vars.SOURCE_READ_ROLE_ARN }}"',
                  "make smoke STAGE=prod", "make promote TO=prod RECORD=previous"]),
    ],
)
def test_jobs_run_the_make_targets_a_person_would(job, commands):
    assert runs(job) == commands
    for command in commands:
        target = re.search(r"make (?:-s )?([a-z-]+)", command).group(1)
        assert target in make_targets()


def test_the_tested_digest_travels_and_a_failed_smoke_test_rolls_back():
    jobs = workflow()["jobs"]
    assert jobs["dev"]["outputs"] == {"digest": "${{ steps.artifact.outputs.digest }}"}
    for stage in ("staging", "prod"):
        rollback = jobs[stage]["steps"][-1]
        assert rollback["if"] == "failure() && steps.promote.outcome == 'success'"
        assert rollback["run"] == f"make promote TO={stage} RECORD=previous"


def test_least_privilege_and_one_deployment_per_stage_at_a_time():
    flow = workflow()
    assert flow["permissions"] == {"contents": "read"}
    jobs = flow["jobs"]
    for name in ("test", "synth"):
        assert "permissions" not in jobs[name]
    for stage in ("dev", "staging", "prod"):
        job = jobs[stage]
        assert job["environment"] == stage
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        assert job["concurrency"] == {"group": f"deploy-{stage}", "cancel-in-progress": False}
        (credentials,) = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
        assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
        assert "aws-access-key-id" not in credentials["with"]


def test_no_stored_keys_anywhere():
    assert "secrets." not in WORKFLOW.read_text()
