"""`make rehearse`: the README's commands, verbatim, deploy, update, promote and destroy on emulators."""

from __future__ import annotations

from rehearsal.scenario import rehearse


def test_rehearsal_runs_the_readme_commands_and_checks_what_each_did():
    lines: list[str] = []
    steps = rehearse(out=lines.append)
    assert steps == [
        "unknown stage",
        "bootstrap",
        "deploy",
        "training job",
        "artifact",
        "endpoint",
        "logs and digest",
        "diff",
        "update",
        "no job",
        "rollback",
        "promote",
        "destroy staging",
        "kind change",
        "instances",
        "destroy dev",
        "strict",
    ]
    commands = [line for line in lines if line.startswith("$ ")]
    # The README's commands, exactly as it writes them.
    for command in ("make deploy STAGE=dev", "make diff STAGE=dev", "make logs STAGE=dev",
                    "make digest STAGE=dev", "make promote FROM=dev TO=staging",
                    "make destroy STAGE=staging", "make destroy STAGE=dev",
                    "npx cdk deploy -c stage=staging tfhub-serving-staging-storage",
                    "npx cdk destroy -c stage=dev tfhub-serving-dev-serving"):
        assert f"$ {command}" in commands
    # What the emulators cannot do is said, never reported as verified.
    notes = [line for line in lines if line.startswith("  !")]
    assert any("ministack's CloudFormation drops bucket Tags" in note for note in notes)
