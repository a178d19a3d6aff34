"""Promotion records in a stage bucket: an append-only log of what each promotion or
rollback served, when, from where and at which commit.

Each record is written once, under the next number of the log
(`promotions/<number>-<time>-<digest>.json`, a conditional write that never
replaces a record). Two promotions of one stage racing within the same second
for the same digest: the loser takes the next number; racing otherwise, both
land under one number, and the later key counts as newest. CI never races
(one concurrency group per stage); do not run two promotions of a stage at
once by hand. The newest record is the highest number, compared as a
number whatever its count of digits; there is no mutable "latest" pointer
that a stray write could redirect. A record's number is always one more than
its `previous` record's (the first: 1, with none), so a record that does not
follow the one it names is refused, naming its key, rather than continued
from. Each record holds
the smoke test's verdict on what it deployed and what the stage served before
(`replaced`); each deploy is logged twice, before it starts and once it is
smoke-tested, so one that never finishes is still in the log. A rollback
returns to `previous` (undo the newest deploy, idempotent: running it twice
lands where running it once did) or `last-verified` (`resolve`). Only a
definite "no such key" counts as no record: any other failure to read stops
the tool, so a hiccup never cuts the chain. The bucket policy lets only the
stage's promotion role write here (`stacks/storage/stack.py`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.exceptions import ClientError

from delivery.artifacts import PromotionError

PREFIX = "promotions/"
# Zero-padded so that a listing reads in order; the number may outgrow it, so
# keys are matched with any count of digits and ordered by their value.
_NUMBER_DIGITS = 8
_KEY = re.compile(rf"^{PREFIX}(\d+)-[^/]+\.json$")
_ATTEMPTS = 20


def read(s3, bucket: str, key: str) -> dict[str, Any] | None:
    """The record at `key`, or None when there is none; a record that is not what
    the log wrote there (its own key inside) is refused."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    try:
        record = json.loads(body)
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("record") != key:
        raise PromotionError(f"s3://{bucket}/{key} is not a promotion record this tool wrote: refusing it.")
    return record


def require(s3, bucket: str, key: str) -> dict[str, Any]:
    record = read(s3, bucket, key)
    if record is None:
        raise PromotionError(f"No promotion record s3://{bucket}/{key}.")
    return record


def newest(s3, bucket: str) -> str | None:
    """The key of the highest-numbered record, or None for an empty log; one that
    does not follow the record it names as `previous` is refused."""
    numbered = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for entry in page.get("Contents", []):
            number = _number(entry["Key"])
            if number is not None:
                numbered[entry["Key"]] = number
    if not numbered:
        return None
    key = max(numbered, key=lambda listed: (numbered[listed], listed))
    record = require(s3, bucket, key)
    _require_follows(bucket, record, record.get("previous") in numbered)
    return key


def log(s3, bucket: str) -> list[dict[str, Any]]:
    """Every record of the log, newest first: the chain of `previous` links from
    the newest record, each link checked, so a record outside the chain counts for nothing."""
    key = newest(s3, bucket)
    record = require(s3, bucket, key) if key else None
    chain = []
    while record is not None:
        chain.append(record)
        earlier = read(s3, bucket, record["previous"]) if record.get("previous") else None
        # Each link steps down one number, so the walk ends, even on a planted loop.
        _require_follows(bucket, record, earlier is not None)
        record = earlier
    return chain


def _number(key: str) -> int | None:
    matched = _KEY.match(key)
    return int(matched.group(1)) if matched else None


def _require_follows(bucket: str, record: dict[str, Any], previous_exists: bool) -> None:
    """Refuse a record unless it follows its `previous` as `write` chains them:
    numbered one more than an existing record it names, or 1 naming none."""
    key, previous = record["record"], record.get("previous")
    number = _number(key)
    if previous is None:
        fits, before = number == 1, "names no record before it"
    else:
        before_number = _number(previous) if isinstance(previous, str) else None
        fits = previous_exists and before_number is not None and number == before_number + 1
        before = f"names {previous}" + ("" if previous_exists else ", which is not there")
    if not fits:
        raise PromotionError(
            f"s3://{bucket}/{key} does not follow the record before it (it is number {number} and {before}): "
            "only the promotion role writes promotions/, each record numbered one after the one it names, so "
            "something else put it there; find out who (CloudTrail), then an administrator lifts the bucket "
            'policy\'s CopiesAndRecordsStay deny for a moment and deletes it (README "Who can change what serves").'
        )


def write(s3, bucket: str, record: dict[str, Any]) -> dict[str, Any]:
    """Append the record with the key of the record before it as `previous`; return it as written."""
    for _ in range(_ATTEMPTS):
        before = newest(s3, bucket)
        number = (_number(before or "") or 0) + 1  # 1 in an empty log
        stamp = record["time"].replace(":", "").replace("+0000", "Z")
        key = f"{PREFIX}{number:0{_NUMBER_DIGITS}d}-{stamp}-{record['digest'][:12]}.json"
        written = {**record, "previous": before, "record": key}
        body = json.dumps(written, indent=2, sort_keys=True).encode()
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch="*")
        except ClientError as error:
            if error.response["Error"]["Code"] in ("PreconditionFailed", "412"):
                continue  # another promotion took this number first
            raise
        return written
    raise PromotionError(
        f"Could not append to s3://{bucket}/{PREFIX} after {_ATTEMPTS} tries: "
        "other promotions keep taking the next number."
    )


# A deploy's first record, written before it starts: what the stage serves and
# what is about to replace it. It has no smoke verdict, so no rollback returns
# to it; a deploy that fails, or a job cancelled before the outcome is written,
# still leaves it in the log.
STARTED = "started"
# The two rollback targets by name (`resolve`).
PREVIOUS, LAST_VERIFIED = "previous", "last-verified"


def started(s3, bucket: str, record: dict[str, Any]) -> dict[str, Any]:
    """Append the record of a deploy about to start; return it as written."""
    return write(s3, bucket, {**record, "deploy": STARTED})


def served_by(s3, bucket: str, state: dict[str, str] | None, hops: int = 20) -> dict[str, Any] | None:
    """`state` (what a stage serves: artifact and digest), with the record and commit
    of the newest verified deploy of it among the log's last `hops` records (None
    for each when none is: served before any promotion, or long ago)."""
    if state is None:
        return None
    key = newest(s3, bucket)
    for _ in range(hops):
        if key is None:
            break
        record = require(s3, bucket, key)
        if verified(record) and (record.get("target_artifact"), record.get("digest")) == (
            state["artifact"],
            state["digest"],
        ):
            return {**state, "record": record["record"], "commit": record.get("commit")}
        key = record.get("previous")
    return {**state, "record": None, "commit": None}


def verified(record: dict[str, Any]) -> bool:
    """Whether the stage answered its smoke test right after this record's deploy."""
    return (record.get("smoke") or {}).get("passed") is True


def resolve(s3, bucket: str, key: str) -> dict[str, Any]:
    """The record a rollback returns to.

    `previous` undoes the newest deploy: after a promotion (verified, failed or
    never finished), the newest verified state before it; after a rollback
    (verified, failed or never finished), that rollback's own target again, so
    running it twice lands where running it once did, never on the state it
    rolled away from. `last-verified` is the newest
    verified state itself: what CI restores once a promotion failed, whether it
    stopped before its deploy (the stage gets again what it serves), during it
    or at its smoke test. With no verified state, both are what the stage served
    before its first promotion (`replaced`). Any other key is that record, which
    must be one a finished deploy wrote."""
    if key not in (PREVIOUS, LAST_VERIFIED):
        record = require(s3, bucket, key)
        if record.get("deploy") == STARTED:
            raise PromotionError(
                f"{key} is written before a deploy starts, not by a state that served: name the record "
                "its deploy wrote when it finished."
            )
        return record
    newest_key = newest(s3, bucket)
    if newest_key is None:
        raise PromotionError(f"s3://{bucket}/{PREFIX} holds no promotion records: nothing to return to.")
    record = require(s3, bucket, newest_key)
    if record.get("rollback_to") and (key == PREVIOUS or verified(record) or record.get("deploy") == STARTED):
        return _target_of(s3, bucket, record)
    if key == LAST_VERIFIED and verified(record):
        return record
    while record.get("previous"):
        record = require(s3, bucket, record["previous"])
        if verified(record):
            return _target_of(s3, bucket, record) if record.get("rollback_to") else record
    return _before(record)


def _target_of(s3, bucket: str, rollback: dict[str, Any]) -> dict[str, Any]:
    """The state a rollback record returned to, as the record that served it."""
    if rollback["rollback_to"] == BEFORE:
        return {**_state_of(rollback), "record": BEFORE}
    return require(s3, bucket, rollback["rollback_to"])


# A rollback to what the stage served before its first promotion names it so.
BEFORE = "before-the-first-promotion"


def _before(first: dict[str, Any]) -> dict[str, Any]:
    """What the stage served before the first promotion (recorded by it), as a record."""
    replaced = first.get("replaced")
    if not replaced:
        raise PromotionError(
            f"No verified state to return to: {first['record']} is the stage's first promotion and the "
            "stage served nothing before it."
        )
    return {
        "record": BEFORE,
        "target_stage": first["target_stage"],
        "target_artifact": replaced["artifact"],
        "digest": replaced["digest"],
    }


def _state_of(rollback: dict[str, Any]) -> dict[str, Any]:
    return {key: rollback[key] for key in ("target_stage", "target_artifact", "digest")}
