"""What every step of the rehearsal shares: the stage names, the check that fails a
step, and the user, the emulated account and what earlier steps learned."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from rehearsal.account import Account
from rehearsal.user import ROOT, User
from stacks.stage.config import read_context
from stacks.stage.names import StageNames

# The project's cdk.json, which the user's copy keeps but for accounts, regions and dev's handle.
_CONTEXT = read_context(ROOT / "cdk.json")
NAMES = {stage: StageNames(_CONTEXT["project"], stage) for stage in ("dev", "staging", "prod")}
STAGES = {stage: (names.storage_stack, names.serving_stack) for stage, names in NAMES.items()}
# staging's pinned_artifact, where its first deploy looks.
STAGING_PIN = _CONTEXT["stages"]["staging"]["pinned_artifact"]


class RehearsalFailed(AssertionError):
    """A check did not hold; the message says which step and what was seen."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RehearsalFailed(message)


class Steps:
    """The state the steps share, and how a step reports."""

    aws: Any
    hub_url: str
    out: Callable[[str], None]
    user: User
    account: Account
    steps: list[str]
    deployed: dict[str, dict[str, Any]]
    digests: dict[str, str]

    def verified(self, step: str, detail: str) -> None:
        self.steps.append(step)
        self.out(f"  ✓ {detail}")

    def note(self, text: str) -> None:
        self.out(f"  ! {text}")

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        try:
            yield
        except RehearsalFailed as failure:
            raise RehearsalFailed(f"{name}: {failure}") from failure
        except Exception as error:  # an inspection that could not even run
            raise RehearsalFailed(f"{name}: {type(error).__name__}: {error}") from error

    def smokes(self, stage: str) -> None:
        before = self.aws.sagemaker.invocations.get(NAMES[stage].endpoint, 0)
        smoke = self.user.run("make", "smoke", f"STAGE={stage}")
        check('"problems": []' in smoke.output, f"make smoke STAGE={stage} found problems:\n{smoke.output[-2000:]}")
        check(
            self.aws.sagemaker.invocations.get(NAMES[stage].endpoint, 0) > before,
            f"make smoke STAGE={stage} never reached the endpoint",
        )
