"""The names a stage's parts find each other by: here, its packaging jobs' prefix, which
IAM scopes, `make logs` and `make status` select the stage's jobs by (`<prefix>-*`)."""

from __future__ import annotations

import re

from stacks.stage.names import StageNames

# CreateTrainingJob's TrainingJobName (SageMaker API reference): 63 characters at most.
TRAINING_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# The longest name a prefix takes: the handler's 12-hex job digest and attempt 20 of 20.
LONGEST_JOB_SUFFIX = "-" + "f" * 12 + "-20"


def overlaps(prefixes: list[str]) -> list[tuple[str, str]]:
    return [(one, other) for one in prefixes for other in prefixes if one != other and other.startswith(f"{one}-")]


def test_job_name_prefixes_of_two_stages_never_overlap_and_fit_sagemaker():
    stages = ["a", "a-pkg", "a-pkg-pkg", f"{'long' * 10}-dev", f"{'long' * 10}-staging"]
    prefixes = [StageNames("tfhub-serving", stage).job_name_prefix for stage in stages]
    assert overlaps(prefixes) == []
    assert len(set(prefixes)) == len(prefixes)
    for prefix in prefixes:
        assert TRAINING_JOB_NAME.match(f"{prefix}{LONGEST_JOB_SUFFIX}"), prefix


def test_a_stage_named_after_another_stages_prefix_gets_none_of_its_jobs():
    """A stage name may embed another stage's whole prefix, or its hash and `-pkg-`:
    its jobs must still fall outside that stage's `<prefix>-*`."""
    victim = StageNames("p", "a").job_name_prefix
    (digest,) = re.findall(r"[0-9a-f]{8,}", victim)
    crafted = [f"a-{digest}-pkg", f"a-{digest}-pkg-x", f"x{victim}", f"x{victim}-x", f"a-{victim}-x"]
    prefixes = [victim] + [StageNames("p", stage).job_name_prefix for stage in crafted]
    assert overlaps(prefixes) == []
