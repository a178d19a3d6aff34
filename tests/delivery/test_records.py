"""The promotion log: numbered, written once, as the promotion role, with the smoke verdict."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from delivery import promote as promotion
from delivery.artifacts import PromotionError
from tests.delivery.world import (
    NOW,
    REGION,
    fails,
    promote,
    rollback,
)


def test_a_failure_to_list_the_records_stops_rather_than_cutting_the_chain():
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    from delivery import records

    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(s3) as stub:
        stub.add_client_error("list_objects_v2", service_error_code="SlowDown", http_status_code=503)
        with pytest.raises(ClientError, match="SlowDown"):
            records.write(s3, "staging-bucket", {"time": "t", "digest": "d" * 64})


def test_records_are_numbered_in_order_and_a_racing_writer_takes_the_next_number(stages):
    from delivery import records

    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    # Another promotion wrote number 2 between this one's listing and its write.
    real_put = staging.s3.put_object

    def racing_put(**kwargs):
        if kwargs["Key"].startswith("promotions/00000004-"):
            staging.s3.put_object = real_put
            raced = {**first, "record": kwargs["Key"], "previous": records.newest(staging.s3, "staging-bucket")}
            real_put(Bucket="staging-bucket", Key=kwargs["Key"], Body=json.dumps(raced))
        return real_put(**kwargs)

    staging.s3.put_object = racing_put
    try:
        third = promote(dev, staging, lambda *a: None, "three", lambda: NOW)
    finally:
        staging.s3.put_object = real_put
    # first: numbers 1 and 2; the next deploy's first record 3; the race took 4.
    assert third["record"].startswith("promotions/00000005-")
    assert third["previous"].startswith("promotions/00000004-")
    assert records.newest(staging.s3, "staging-bucket") == third["record"]


def test_a_record_that_is_not_what_the_log_wrote_there_is_refused(stages):
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    # A copy of a genuine record under another key: its content names its real place.
    body = staging.s3.get_object(Bucket="staging-bucket", Key=first["record"])["Body"].read()
    staging.s3.put_object(Bucket="staging-bucket", Key="promotions/00000009-copy.json", Body=body)
    with pytest.raises(PromotionError, match=r"00000009-copy.json is not a promotion record this tool wrote"):
        rollback(staging, "previous", lambda *a: pytest.fail("deployed"), "x")


def _plant(s3, key: str, previous: str | None, **fields) -> None:
    body = {"record": key, "previous": previous, "time": "2026-01-01T00:00:00+00:00", "digest": "a" * 64, **fields}
    s3.put_object(Bucket="staging-bucket", Key=key, Body=json.dumps(body))


def test_a_record_that_does_not_follow_the_one_it_names_is_refused_by_its_key_not_continued_from(stages):
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    # The highest 8-digit number: continuing from it, the log would go on at 9 digits.
    planted = "promotions/99999999-x-aaaa.json"
    _plant(staging.s3, planted, first["record"], smoke={"passed": True})
    refusal = rf"{planted} does not follow the record before it \(it is number 99999999 and names {first['record']}\)"
    with pytest.raises(PromotionError, match=refusal + r".*CopiesAndRecordsStay"):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "two", lambda: NOW)
    with pytest.raises(PromotionError, match=refusal):
        rollback(staging, "previous", lambda *a: pytest.fail("deployed"), "x")
    keys = [o["Key"] for o in staging.s3.list_objects_v2(Bucket="staging-bucket", Prefix="promotions/")["Contents"]]
    assert not [key for key in keys if key.startswith("promotions/00000003-") or key.startswith("promotions/1")]


def test_a_record_naming_none_before_it_is_the_first_or_refused(stages):
    from delivery import records

    dev, staging, _ = stages
    _plant(staging.s3, "promotions/00000005-x.json", None)
    with pytest.raises(PromotionError, match=r"00000005-x.json does not follow .*names no record before it"):
        records.write(staging.s3, "staging-bucket", {"time": "2026-01-01T00:00:00+00:00", "digest": "b" * 64})


def test_numbers_are_ordered_by_value_whatever_their_count_of_digits():
    from delivery import records

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="staging-bucket")
        previous = None
        for number in range(1, 10):  # one digit each: "9-" sorts after "00000010-" as text
            _plant(s3, f"promotions/{number}-x.json", previous)
            previous = f"promotions/{number}-x.json"
        tenth = records.write(s3, "staging-bucket", {"time": "2026-01-01T00:00:00+00:00", "digest": "b" * 64})
        assert (tenth["record"][:20], tenth["previous"]) == ("promotions/00000010-", "promotions/9-x.json")
        assert records.newest(s3, "staging-bucket") == tenth["record"]
        assert [r["record"][:13] for r in records.log(s3, "staging-bucket")][:3] == [
            "promotions/00",
            "promotions/9-",
            "promotions/8-",
        ]


def test_the_log_is_the_chain_from_the_newest_record_and_a_record_beside_it_counts_for_nothing(stages):
    from delivery import records

    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    second = promote(dev, staging, lambda *a: None, "two", lambda: NOW)
    beside = "promotions/00000002-beside.json"  # a passing verdict for a digest nobody promoted
    _plant(staging.s3, beside, first["previous"], smoke={"passed": True}, digest="e" * 64)
    chain = [record["record"] for record in records.log(staging.s3, "staging-bucket")]
    assert chain[:2] == [second["record"], second["previous"]] and first["record"] in chain
    assert beside not in chain and len(chain) == 4


def test_the_target_is_written_as_its_promotion_role(stages):
    """Every write into the target bucket goes through the role its bucket policy names."""
    dev, staging, _ = stages  # staging's storage stack exports its promotion role (conftest)
    events = []

    def assume(role):
        events.append(role)
        return staging.s3

    import dataclasses

    target = dataclasses.replace(staging, s3=None, assume=assume)  # the caller's own client is never used
    record = promote(dev, target, lambda *a: events.append("deploy"), "c0ffee", lambda: NOW)
    back = rollback(target, record["record"], lambda *a: events.append("deploy"), "c0ffee", lambda: NOW)
    role = "arn:aws:iam::222222222222:role/promotion"
    # Assumed again after each deploy: a chained session lasts an hour, a blue/green deploy may take longer.
    assert events == [role, "deploy", role] * 2
    assert back["rollback_to"] == record["record"]


def test_a_smoke_test_that_gets_no_answer_is_a_failed_verdict(stages):
    from tools.cli import UserError as NoAnswer

    def unreachable(stage):
        raise NoAnswer("Invoking tfhub-serving-staging failed: ModelError")

    dev, staging, _ = stages
    record = promote(dev, staging, lambda *a: None, "one", lambda: NOW, smoke=unreachable)
    assert record["smoke"] == {"passed": False, "problems": ["Invoking tfhub-serving-staging failed: ModelError"]}


def test_in_github_actions_the_record_and_smoke_report_go_to_the_run_summary(stages, tmp_path):
    dev, staging, _ = stages
    record = promote(dev, staging, lambda *a: None, "c0ffee", lambda: NOW, smoke=fails)
    summary = tmp_path / "summary.md"
    promotion.summarize(record, str(summary))
    text = summary.read_text()
    assert "### staging: promoted" in text and record["digest"] in text and "smoke test: FAILED" in text
    assert "output 'embedding' is 0.2" in text and record["record"] in text
