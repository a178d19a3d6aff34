"""Which runs may deploy, and that no deploy is cut short or run beside another of
its stage: each deploying job's `if:` chain, concurrency group and
`cancel-in-progress`, read from the workflow's YAML."""

from __future__ import annotations

import pytest

from tests.delivery.workflow_expressions import condition, context
from tests.delivery.workflow_runner import jobs, workflow

DEPLOYING = ("dev", "staging", "prod")


def runs(job_id: str, github: dict[str, str]) -> bool:
    """Whether `job_id` runs for an event, every job before it having run green as far
    as its own `if:` lets it (a job is skipped unless all it needs succeeded, as
    GitHub's default `success()` check has it)."""
    job = jobs()[job_id]
    needs = job.get("needs", [])
    ran = all(runs(need, github) for need in ([needs] if isinstance(needs, str) else needs))
    state = {**context(), "github": {**context()["github"], **github}, "status": "success" if ran else "skipped"}
    # The gate's output a current run hands on: this is about events, not staleness.
    state["needs"] = {"prod-gate": {"outputs": {"current": "true"}}}
    return condition(job.get("if"), state)


@pytest.mark.parametrize(
    "github",
    [
        {"event_name": "pull_request", "ref": "refs/pull/7/merge"},
        # Neither trigger gives these today; the condition still holds if one is added.
        {"event_name": "push", "ref": "refs/heads/feature"},
        {"event_name": "workflow_dispatch", "ref": "refs/heads/main"},
    ],
    ids=["pull request", "push to another branch", "manual run on main"],
)
def test_nothing_deploys_but_a_push_to_main(github):
    """dev's own `if:` holds the whole chain: every later deploy needs dev."""
    assert [name for name in DEPLOYING if runs(name, github)] == []
    assert runs("test", github) and runs("synth", github)


def test_a_push_to_main_deploys_every_stage():
    github = {"event_name": "push", "ref": "refs/heads/main"}
    assert [name for name in DEPLOYING if runs(name, github)] == list(DEPLOYING)


def test_each_stage_deploys_in_its_own_group_one_run_at_a_time():
    """One group per stage, named by the stage alone: anything run-specific in it
    (`github.run_id`, a ref, a sha) would let two runs deploy a stage at once."""
    groups = {name: jobs()[name]["concurrency"]["group"] for name in DEPLOYING}
    assert groups == {name: f"deploy-{name}" for name in DEPLOYING}
    assert all("${{" not in group for group in groups.values())


def test_no_deploy_is_cancelled_by_a_newer_run():
    """`cancel-in-progress: true` would cancel a deploy midway; a cancelled promotion
    is not rolled back (the steps of a cancelled job get 5 minutes)."""
    for name in DEPLOYING:
        assert jobs()[name]["concurrency"]["cancel-in-progress"] is False, name
    # Nor a group over the whole workflow that would cancel them all.
    assert "concurrency" not in workflow()
    others = {name for name, job in jobs().items() if "concurrency" in job}
    assert others == set(DEPLOYING)
