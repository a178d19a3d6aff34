"""The deploy rehearsal: the real CDK CLI deploys, updates and destroys dev on local emulators."""

from __future__ import annotations

from tools.rehearse import rehearse


def test_rehearsal_deploys_updates_fails_safely_and_destroys():
    lines: list[str] = []
    steps = rehearse(out=lines.append)
    assert steps == [
        "bootstrap",
        "training job",
        "artifact",
        "endpoint",
        "new job",
        "replace",
        "no job",
        "rollback",
        "destroy",
    ]
    # What the emulators cannot do is said, never reported as verified.
    notes = [line for line in lines if line.startswith("  !")]
    assert any("not emulated by ministack: AWS::SageMaker::Endpoint" in n for n in notes)
    assert any("moto's training jobs run nothing" in n for n in notes)
