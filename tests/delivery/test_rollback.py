"""Rollback against moto: to a named record or the last verified state, with its assembly."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from delivery import artifacts, records
from delivery.artifacts import PromotionError
from tests.delivery.world import (
    NOW,
    fails,
    promote,
    promoted,
    repackage,
    rollback,
    serve_pinned,
    stack_with_outputs,
)


def roll_back(staging, key: str, hours: int) -> tuple[str, dict]:
    """A rollback run `hours` after NOW: the digest it deployed, and its record."""
    served: list[str] = []
    record = rollback(
        staging,
        key,
        lambda stage, key_, digest, assembly=None: served.append(digest),
        "back",
        lambda: NOW + dt.timedelta(hours=hours),
    )
    (digest,) = served
    return digest, record


def test_rollback_redeploys_an_earlier_record_after_verifying_it(stages):
    dev, staging, packaged_record = stages
    first = promote(dev, staging, lambda *a: None, "c0ffee", lambda: NOW)
    deployed = []
    later = NOW + dt.timedelta(hours=1)
    record = rollback(
        staging,
        first["record"],
        lambda stage, key, digest, assembly=None: deployed.append((stage, key)),
        "beef",
        lambda: later,
    )
    assert deployed == [("staging", promoted(packaged_record["tree_digest"]))]
    assert record["rollback_to"] == first["record"]
    assert record["commit"] == "beef"
    # A damaged copy is refused rather than served.
    staging.s3.put_object(
        Bucket="staging-bucket",
        Key=f"{promoted(packaged_record['tree_digest'])}use/4/saved_model.pb",
        Body=b"broken",
    )
    with pytest.raises(PromotionError, match="Digest mismatch"):
        rollback(staging, first["record"], lambda *a: pytest.fail("deployed"), "beef")


def test_previous_names_the_promotion_the_latest_replaced(stages):
    dev, staging, packaged_record = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    second = promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(days=1))
    # Each deploy is logged before it starts, then with its verdict.
    assert second["previous"] == second["started"]
    assert records.require(staging.s3, "staging-bucket", second["started"])["previous"] == first["record"]
    deployed = []
    back = rollback(
        staging,
        "previous",
        lambda stage, key, digest, assembly=None: deployed.append(stage),
        "three",
        lambda: NOW + dt.timedelta(days=2),
    )
    assert back["rollback_to"] == first["record"] and deployed == ["staging"]


def test_a_deploy_records_which_promotion_and_commit_put_there_what_it_replaces(stages):
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    # What the deploy left: the serving stack reports the promoted copy.
    stack_with_outputs(
        staging.cloudformation,
        "tfhub-serving-staging-serving",
        {"ArtifactLocation": first["target_artifact"], "TreeDigest": first["digest"]},
    )
    repackage(dev, "other")
    second = promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1))
    started = records.require(staging.s3, "staging-bucket", second["started"])
    expected = {"artifact": first["target_artifact"], "digest": first["digest"], "record": first["record"]}
    assert started["replaced"] == {**expected, "commit": "one"} == second["replaced"]


def test_previous_twice_lands_where_once_did(stages):
    dev, staging, record = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    # A second, different artifact promoted on top of it.
    second_digest = repackage(dev, "other")
    second = promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1))
    assert second["digest"] == second_digest != first["digest"]
    runs = [roll_back(staging, "previous", hours) for hours in (2, 3)]
    assert [digest for digest, _ in runs] == [first["digest"]] * 2


def test_a_planted_record_cannot_choose_what_a_rollback_serves(stages):
    dev, staging, record = stages
    promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    # Someone who can write promotions/ points latest at an artifact no promotion verified.
    staging.s3.put_object(Bucket="staging-bucket", Key="artifacts/evil/model.tar.gz", Body=b"x")
    planted = {
        "digest": record["tree_digest"],
        "target_stage": "staging",
        "record": "promotions/planted.json",
        "target_artifact": "s3://staging-bucket/artifacts/evil/model.tar.gz",
        "previous": None,
    }
    staging.s3.put_object(Bucket="staging-bucket", Key="promotions/planted.json", Body=json.dumps(planted))
    with pytest.raises(PromotionError, match=r"does not name a promoted copy of stage staging"):
        rollback(staging, "promotions/planted.json", lambda *a: pytest.fail("deployed"), "x")


def test_a_record_whose_digest_does_not_match_its_copy_is_refused(stages):
    dev, staging, record = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    forged = {
        **first,
        "digest": "f" * 64,
        "target_artifact": f"s3://staging-bucket/{promoted('f' * 64)}",
        "record": "promotions/forged.json",
    }
    staging.s3.put_object(Bucket="staging-bucket", Key="promotions/forged.json", Body=json.dumps(forged))
    with pytest.raises(PromotionError, match=r"No artifact at s3://staging-bucket/artifacts/promoted/f{64}/model/"):
        rollback(staging, "promotions/forged.json", lambda *a: pytest.fail("deployed"), "x")


def test_a_failed_smoke_test_is_recorded_and_previous_returns_to_the_last_verified_state(stages):
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    repackage(dev, "other")
    second = promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1), smoke=fails)
    assert second["smoke"]["passed"] is False and second["smoke"]["problems"]
    # The CI rollback, then someone running it again.
    runs = [roll_back(staging, "previous", hours) for hours in (2, 3)]
    back = runs[-1][1]
    assert [digest for digest, _ in runs] == [first["digest"]] * 2
    assert back["rollback_to"] == first["record"] and back["smoke"]["passed"] is True


class DeployFailed(Exception):
    """cdk deploy failing, or the job cancelled, before the outcome is recorded."""


def failing_deploy(*args):
    raise DeployFailed


def test_a_deploy_that_never_finished_rolls_back_to_the_state_before_it(stages):
    """No outcome recorded (the deploy failed or the job was cancelled): `previous`
    is the newest verified state, not the one before it."""
    dev, staging, _ = stages
    promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    repackage(dev, "other")
    second = promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1))
    repackage(dev, "third")
    with pytest.raises(DeployFailed):
        promote(dev, staging, failing_deploy, "three", lambda: NOW + dt.timedelta(hours=2))
    newest = records.require(staging.s3, "staging-bucket", records.newest(staging.s3, "staging-bucket"))
    assert newest["deploy"] == records.STARTED and newest["commit"] == "three"
    # CI's rollback, then someone running it again.
    runs = [roll_back(staging, "previous", hours) for hours in (3, 4)]
    back = runs[-1][1]
    assert [digest for digest, _ in runs] == [second["digest"]] * 2
    assert back["rollback_to"] == second["record"]


def test_a_first_promotion_whose_deploy_never_finished_returns_to_what_was_there(stages, packaged):
    dev, staging, record = stages
    pinned = serve_pinned(staging, packaged[0], record["tree_digest"])
    repackage(dev, "other")
    with pytest.raises(DeployFailed):
        promote(dev, staging, failing_deploy, "one", lambda: NOW)
    served = []
    back = rollback(
        staging, "previous", lambda stage, key, digest, assembly=None: served.append(key), "back", lambda: NOW
    )
    # Served from the write-once promoted copy of what was there, made from it.
    copy = promoted(record["tree_digest"])
    assert served == [copy] and back["target_artifact"] == f"s3://staging-bucket/{copy}"
    assert back["rollback_to"] == records.BEFORE and back["source_artifact"] == pinned


def test_last_verified_after_a_promotion_refused_before_its_deploy_keeps_what_serves(stages):
    """CI restores `last-verified` after any failed promotion: one that stopped
    before its deploy (here a digest mismatch) leaves the newest record verified,
    and that is what the stage gets again, not the state before it."""
    dev, staging, _ = stages
    promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    repackage(dev, "other")
    second = promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1))
    with pytest.raises(PromotionError, match="not the tested"):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "three", expected_digest="e" * 64)
    served, back = roll_back(staging, records.LAST_VERIFIED, 2)
    assert served == second["digest"] and back["rollback_to"] == second["record"]


def test_previous_after_a_rollback_that_never_finished_retries_its_target(stages):
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    repackage(dev, "other")
    promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1))
    with pytest.raises(DeployFailed):
        rollback(staging, "previous", failing_deploy, "back", lambda: NOW + dt.timedelta(hours=2))
    served, back = roll_back(staging, "previous", 3)
    assert served == first["digest"] and back["rollback_to"] == first["record"]


def test_previous_after_a_rollback_whose_smoke_test_failed_retries_its_target(stages):
    """Undoing that rollback is not going back to the state it rolled away from:
    run again, `previous` lands where the first run did."""
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    repackage(dev, "other")
    promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1))
    failed = rollback(staging, "previous", lambda *a: None, "back", lambda: NOW + dt.timedelta(hours=2), smoke=fails)
    assert failed["rollback_to"] == first["record"] and failed["smoke"]["passed"] is False
    served, back = roll_back(staging, "previous", 3)
    assert served == first["digest"] and back["rollback_to"] == first["record"]


def test_a_record_written_before_a_deploy_is_no_rollback_target(stages):
    dev, staging, _ = stages
    promoted_record = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    with pytest.raises(PromotionError, match="is written before a deploy starts"):
        rollback(staging, promoted_record["started"], lambda *a: pytest.fail("deployed"), "back")


def test_a_failed_first_promotion_rolls_back_to_what_the_stage_served_before(stages, packaged):
    dev, staging, record = stages
    pinned = serve_pinned(staging, packaged[0], record["tree_digest"])
    repackage(dev, "other")
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW, smoke=fails)
    # Served before any promotion: no record or commit of the log deployed it.
    assert first["replaced"] == {"artifact": pinned, "digest": record["tree_digest"], "record": None, "commit": None}
    served = []
    for hours in (1, 2):
        back = rollback(
            staging,
            "previous",
            lambda stage, key, digest, assembly=None: served.append((key, digest)),
            "back",
            lambda hours=hours: NOW + dt.timedelta(hours=hours),
        )
    assert served == [(promoted(record["tree_digest"]), record["tree_digest"])] * 2
    assert back["rollback_to"] == "before-the-first-promotion"
    # Said plainly: nothing recorded the infrastructure that served it then.
    assert back["infrastructure"] == "this checkout's: none was recorded with before-the-first-promotion"


def test_a_failed_first_promotion_onto_nothing_says_plainly_there_is_nothing_to_return_to(stages):
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW, smoke=fails)
    assert first["replaced"] is None
    with pytest.raises(PromotionError, match="is the stage's first promotion and the stage served nothing before it"):
        rollback(staging, "previous", lambda *a: pytest.fail("deployed"), "back")


def test_what_served_before_the_first_promotion_comes_back_as_a_copy_its_key_cannot_change(stages, packaged):
    """The key a stage served before its first promotion (`pinned_artifact`) is one
    other principals may write (tests/storage/test_bucket_access.py): a rollback to it
    serves the write-once promoted copy of its digest, made once as verified, so a
    later write to that key changes nothing a rollback deploys."""
    dev, staging, record = stages
    serve_pinned(staging, packaged[0], record["tree_digest"])
    repackage(dev, "other")
    promote(dev, staging, lambda *a: None, "one", lambda: NOW, smoke=fails)
    first = rollback(staging, "previous", lambda *a: None, "back", lambda: NOW + dt.timedelta(hours=1), smoke=fails)
    staging.s3.put_object(Bucket="staging-bucket", Key="artifacts/pinned/use/4/use/4/saved_model.pb", Body=b"evil")
    # Nothing verified yet: last-verified is again the state before the first promotion.
    served: list[str] = []
    again = rollback(
        staging,
        records.LAST_VERIFIED,
        lambda stage, key, digest, assembly=None: served.append(key),
        "back",
        lambda: NOW + dt.timedelta(hours=2),
    )
    copy = promoted(record["tree_digest"])
    assert served == [copy] and again["rollback_to"] == records.BEFORE
    assert first["target_artifact"] == again["target_artifact"] == f"s3://staging-bucket/{copy}"
    artifacts.verify(staging.s3, f"s3://staging-bucket/{copy}", record["tree_digest"])
