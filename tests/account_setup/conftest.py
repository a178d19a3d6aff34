"""Each stage's CI access stack, synthesized once per session."""

from __future__ import annotations

import pytest

from tests.account_setup.world import (
    Synthesized,
)


@pytest.fixture(scope="session")
def ci_access(tmp_path_factory):
    cache: dict[str, Synthesized] = {}

    def get(stage: str) -> Synthesized:
        if stage not in cache:
            cache[stage] = Synthesized(stage, tmp_path_factory.mktemp(f"ci-access-{stage}"))
        return cache[stage]

    return get
