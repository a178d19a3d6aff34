"""Promotion records in a stage bucket: an append-only log of what each promotion or
rollback served, when, from where and at which commit.

Each record is written once, under the next number of the log
(`promotions/<number>-<time>-<digest>.json`, a conditional write that never
replaces a record: two promotions racing for one number both land, one under
the next number). The newest record is the highest number; there is no
mutable "latest" pointer that a stray write could redirect. `previous` is
idempotent: it names what was served before the newest promotion that was not
itself a rollback, so running it twice lands where running it once did. Only a
definite "no such key" counts as no record: any other failure to read stops
the tool, so a hiccup never cuts the chain. The bucket policy lets only the
stage's promotion role write here (`stacks/storage.py`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.exceptions import ClientError

from promotion.artifacts import PromotionError

PREFIX = "promotions/"
_NUMBER_DIGITS = 8
_KEY = re.compile(rf"^{PREFIX}(\d{{{_NUMBER_DIGITS}}})-[^/]+\.json$")
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
    """The key of the highest-numbered record, or None for an empty log."""
    numbered = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for entry in page.get("Contents", []):
            match = _KEY.match(entry["Key"])
            if match:
                numbered.append((int(match.group(1)), entry["Key"]))
    return max(numbered)[1] if numbered else None


def write(s3, bucket: str, record: dict[str, Any]) -> dict[str, Any]:
    """Append the record with the key of the record before it as `previous`; return it as written."""
    for _ in range(_ATTEMPTS):
        before = newest(s3, bucket)
        number = int(_KEY.match(before).group(1)) + 1 if before else 1
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
    raise PromotionError(f"Could not append to s3://{bucket}/{PREFIX} after {_ATTEMPTS} tries: "
                         "other promotions keep taking the next number.")


def resolve(s3, bucket: str, key: str) -> str:
    """`previous`: what was served before the newest promotion that was not a
    rollback; any other key is itself."""
    if key != "previous":
        return key
    newest_key = newest(s3, bucket)
    if newest_key is None:
        raise PromotionError(f"s3://{bucket}/{PREFIX} holds no promotion records: nothing to return to.")
    record = require(s3, bucket, newest_key)
    while record.get("rollback_to"):
        record = require(s3, bucket, record["previous"])
    if not record.get("previous"):
        raise PromotionError(
            f"{record['record']} is the first promotion to this stage: there is no earlier one to return to."
        )
    return record["previous"]
