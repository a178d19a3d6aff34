"""`make promote`'s command line: the stage's true state is printed whatever the
outcome, and never hides the outcome itself."""

from __future__ import annotations

import types

import pytest

from delivery import promote as promotion
from delivery.artifacts import PromotionError
from tools.cli import UserError, run

STATE = "staging now serves s3://staging-bucket/artifacts/promoted/x/model/ (tree digest x)."


@pytest.fixture
def promoting(monkeypatch):
    """`main` up to the promotion, with no AWS: the promotion raises what a test sets."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setattr(promotion, "stage_access", lambda stage, *a, **k: types.SimpleNamespace(stage=stage))
    monkeypatch.setattr(promotion, "state_line", lambda target: STATE)
    raised: list[BaseException] = []

    def promote(*args, **kwargs):
        raise raised[0]

    monkeypatch.setattr(promotion, "promote", promote)
    monkeypatch.setattr(promotion, "rollback", promote)
    return raised


ARGV = ["--from", "dev", "--to", "staging"]
ROLLBACK = ["--to", "staging", "--record", "previous"]


@pytest.mark.parametrize(
    "error",
    [RuntimeError("a bug nobody expected"), KeyboardInterrupt()],
    ids=["unexpected exception", "interrupted (a cancelled job)"],
)
def test_the_state_is_printed_after_an_unexpected_error_which_still_propagates(promoting, capsys, error):
    promoting.append(error)
    with pytest.raises(type(error)) as raised:
        promotion.main(ARGV)
    assert raised.value is error
    assert capsys.readouterr().out.splitlines() == [STATE]


NO_STATE = "No verified state to return to: promotions/00000002-x.json is the stage's first promotion"


@pytest.mark.parametrize(
    ("argv", "error", "line"),
    [
        (ARGV, PromotionError("digest mismatch"), "Promotion stopped, nothing changed: digest mismatch"),
        (ARGV, UserError("the deploy failed"), "the deploy failed"),
        # Right after a failed promotion changed the stage: no claim that nothing did.
        (ROLLBACK, PromotionError(NO_STATE), f"Rollback stopped: {NO_STATE}"),
    ],
)
def test_an_expected_failure_keeps_its_line_and_exit_code_after_the_state(promoting, capsys, argv, error, line):
    promoting.append(error)
    assert run(promotion.main, argv) == 1
    printed = capsys.readouterr()
    assert printed.out.splitlines() == [STATE] and printed.err.splitlines() == [line]


def test_a_state_that_cannot_be_read_is_one_line_and_masks_nothing(promoting, monkeypatch, capsys):
    def unreadable(target):
        raise ConnectionError("endpoint\nunreachable")

    monkeypatch.setattr(promotion, "state_line", unreadable)
    promoting.append(RuntimeError("a bug nobody expected"))
    with pytest.raises(RuntimeError, match="a bug nobody expected"):
        promotion.main(ARGV)
    assert capsys.readouterr().out.splitlines() == [
        "staging's state could not be read: ConnectionError: endpoint unreachable"
    ]
