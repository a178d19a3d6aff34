"""A rollback waits for an update CloudFormation is still running on the serving
stack (a promotion killed with its step) before it deploys, for a bounded time."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from functools import partial

import boto3
import pytest
from botocore.stub import Stubber

from delivery import records
from delivery import rollback as rollback_module
from delivery.artifacts import PromotionError
from delivery.target import POLL_SECONDS, StageAccess, settled
from stacks.stage.names import StageNames
from tests.delivery.world import NOW, REGION, promote, promoted, repackage, rollback, stack_with_outputs

SERVING = "tfhub-serving-staging-serving"


class Clock:
    """Time that passes only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def stubbed(*statuses: str) -> tuple[StageAccess, Stubber]:
    """staging, its CloudFormation answering DescribeStacks with `statuses` in turn."""
    cloudformation = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(cloudformation)
    for status in statuses:
        stack = {"StackName": SERVING, "CreationTime": NOW, "StackStatus": status}
        stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": SERVING})
    stubber.activate()
    return StageAccess("staging", StageNames("tfhub-serving", "staging"), cloudformation, None), stubber


def test_an_update_in_progress_is_waited_for_saying_so_once(capsys):
    target, stubber = stubbed("UPDATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE")
    clock = Clock()
    assert settled(target, minutes=5, sleep=clock.sleep, clock=clock) == "UPDATE_COMPLETE"
    stubber.assert_no_pending_responses()
    assert clock.sleeps == [POLL_SECONDS] * 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{SERVING} is UPDATE_IN_PROGRESS: waiting up to 5 minutes for CloudFormation")


@pytest.mark.parametrize("status", ["UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"])
def test_a_stack_nothing_runs_on_is_not_waited_for(status):
    """REVIEW_IN_PROGRESS: made for a change set nobody executed, it never leaves that by itself."""
    target, stubber = stubbed(status)
    assert settled(target, sleep=lambda s: pytest.fail("waited")) == status
    stubber.assert_no_pending_responses()


def test_a_stack_still_in_progress_at_the_bound_stops_the_rollback_in_one_line(capsys):
    # CloudFormation's own rollback of the killed update, polled for 2 minutes.
    polls = 2 * 60 // POLL_SECONDS + 1
    target, stubber = stubbed(*["UPDATE_ROLLBACK_IN_PROGRESS"] * polls)
    clock = Clock()
    with pytest.raises(PromotionError) as stopped:
        settled(target, minutes=2, sleep=clock.sleep, clock=clock)
    stubber.assert_no_pending_responses()
    assert clock.now == 120
    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith(f"{SERVING} is still UPDATE_ROLLBACK_IN_PROGRESS after 2 minutes: nothing was rolled")
    assert "make promote TO=staging RECORD=... again" in message


def test_no_serving_stack_is_nothing_to_wait_for():
    target, stubber = stubbed()
    stubber.add_client_error(
        "describe_stacks", "ValidationError", f"Stack with id {SERVING} does not exist", 400, {"StackName": SERVING}
    )
    assert settled(target, sleep=lambda s: pytest.fail("waited")) is None


class Updating:
    """moto's CloudFormation, reporting the serving stack in progress while `statuses` last."""

    def __init__(self, real, statuses: list[str]) -> None:
        self.real, self.statuses = real, statuses

    def describe_stacks(self, **kwargs):
        answer = self.real.describe_stacks(**kwargs)
        if kwargs.get("StackName") == SERVING and self.statuses:
            answer["Stacks"][0]["StackStatus"] = self.statuses.pop(0)
        return answer

    def __getattr__(self, name):
        return getattr(self.real, name)


class Killed(Exception):
    """The promotion's step killed mid-deploy: no outcome is recorded."""


def killed(*args):
    raise Killed


def killed_promotion(stages) -> tuple[StageAccess, dict, str]:
    """staging after a promotion whose step was killed mid-deploy (its log says only
    that the deploy started), with the serving stack as CloudFormation's update,
    carried on without it, leaves it: serving the killed promotion's copy. Returns
    staging with that stack reported in progress while `statuses` last, the verified
    promotion before, and the killed one's digest."""
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    digest = repackage(dev, "other")
    with pytest.raises(Killed):
        promote(dev, staging, killed, "two", lambda: NOW + dt.timedelta(hours=1))
    outputs = {"ArtifactLocation": f"s3://staging-bucket/{promoted(digest)}", "TreeDigest": digest}
    stack_with_outputs(staging.cloudformation, SERVING, outputs)
    return staging, first, digest


def test_a_rollback_deploys_only_once_the_killed_update_has_finished(stages, monkeypatch):
    staging, first, killed_digest = killed_promotion(stages)
    statuses = ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"]
    updating = replace(staging, cloudformation=Updating(staging.cloudformation, statuses))
    events: list[str] = []
    clock = Clock()
    monkeypatch.setattr(rollback_module, "settled", partial(settled, sleep=clock.sleep, clock=clock))

    def deploy(stage, key, digest, assembly=None):
        events.append(f"deploy {digest}, CloudFormation still updating: {bool(statuses)}")

    back = rollback(updating, "previous", deploy, "back", lambda: NOW + dt.timedelta(hours=2))
    assert events == [f"deploy {first['digest']}, CloudFormation still updating: False"]
    assert clock.sleeps == [POLL_SECONDS] * 2
    # What it replaced is what the update ended as.
    assert back["replaced"]["digest"] == killed_digest and back["rollback_to"] == first["record"]


def test_a_rollback_that_cannot_wait_long_enough_changes_nothing(stages, monkeypatch):
    staging, _, _ = killed_promotion(stages)
    updating = replace(staging, cloudformation=Updating(staging.cloudformation, ["UPDATE_IN_PROGRESS"] * 100))
    clock = Clock()
    monkeypatch.setattr(rollback_module, "settled", partial(settled, minutes=2, sleep=clock.sleep, clock=clock))
    newest = records.newest(staging.s3, "staging-bucket")
    with pytest.raises(PromotionError, match="is still UPDATE_IN_PROGRESS after 2 minutes: nothing was rolled back"):
        rollback(updating, "previous", lambda *a: pytest.fail("deployed"), "back")
    # The killed promotion's record is still the newest: the rollback wrote none.
    assert records.newest(staging.s3, "staging-bucket") == newest
    assert records.require(staging.s3, "staging-bucket", newest)["commit"] == "two"
