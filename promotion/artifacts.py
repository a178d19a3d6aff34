"""Stage artifacts in S3: where a stage's artifact is, copying it, verifying its digest,
and the promotion records kept beside it. Plain functions over boto3 clients."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from packaging_job.packager.manifest import tree_digest
from promotion.deployed import serving_outputs
from tools.cli import UserError

MANIFEST = "manifest.json"
PROMOTED_PREFIX = "artifacts/promoted/"
RECORDS_PREFIX = "promotions/"
LATEST_RECORD = f"{RECORDS_PREFIX}latest.json"
_CHUNK = 1 << 20


class PromotionError(UserError):
    """Promotion stopped before changing anything; the message says why."""


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def stage_artifact(cloudformation, stack: str) -> tuple[str, str]:
    """(artifact prefix URI, tree digest) a stage's serving stack reports."""
    outputs = serving_outputs(cloudformation, stack)
    missing = [key for key in ("ArtifactLocation", "TreeDigest") if key not in outputs]
    if missing:
        raise PromotionError(
            f"Stack {stack} has no {' or '.join(missing)} output: use a stage whose serving "
            "stack reports its artifact's digest (one that packaged, or was promoted)."
        )
    uri = outputs["ArtifactLocation"]
    if not uri.endswith("/"):
        raise PromotionError(f"{uri} is not an artifact prefix; only packaged artifacts are promoted.")
    return uri, outputs["TreeDigest"]


def export_value(cloudformation, name: str) -> str:
    for page in cloudformation.get_paginator("list_exports").paginate():
        for export in page["Exports"]:
            if export["Name"] == name:
                return export["Value"]
    raise PromotionError(f"No CloudFormation export {name}: deploy the target stage's storage first.")


def copy_prefix(source_s3, source_uri: str, target_s3, target_bucket: str, target_prefix: str) -> list[str]:
    """Stream every object under `source_uri` to `target_prefix`; return the new keys."""
    bucket, prefix = split(source_uri)
    keys = [
        obj["Key"]
        for page in source_s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]
    if not keys:
        raise PromotionError(f"No artifact at {source_uri}: it was deleted or never written.")
    written = []
    try:
        for key in keys:
            body = source_s3.get_object(Bucket=bucket, Key=key)["Body"]
            target_key = target_prefix + key[len(prefix):]
            target_s3.upload_fileobj(body, target_bucket, target_key)
            written.append(target_key)
    except Exception:
        remove(target_s3, target_bucket, written)
        raise
    return written


def verify(s3, bucket: str, prefix: str, expected_digest: str) -> dict[str, Any]:
    """Re-hash every file the manifest lists; the tree digest must be `expected_digest`."""
    try:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}{MANIFEST}")["Body"].read())
    except ClientError as error:
        raise PromotionError(f"s3://{bucket}/{prefix}{MANIFEST} cannot be read: {error}") from error
    # Manifest paths are relative to the TF Serving version folder; nothing but
    # the listed files (and the manifest) may be served from the prefix.
    version_prefix = f"{prefix}{manifest['model_name']}/{manifest['model_version']}/"
    listed = {f"{version_prefix}{entry['path']}" for entry in manifest["files"]}
    listed |= {f"{prefix}code/{entry['path']}" for entry in manifest.get("code_files", [])}
    listed.add(f"{prefix}{MANIFEST}")
    present = {
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    }
    if present != listed:
        raise PromotionError(
            f"s3://{bucket}/{prefix} does not hold exactly the manifest's files: unlisted "
            f"{sorted(present - listed)[:5]}, missing {sorted(listed - present)[:5]}."
        )
    for entry in manifest.get("code_files", []):
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}code/{entry['path']}")["Body"].read()
        if hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise PromotionError(f"s3://{bucket}/{prefix}code/{entry['path']} does not match the manifest.")
    seen = []
    for entry in manifest["files"]:
        digest = hashlib.sha256()
        try:
            body = s3.get_object(Bucket=bucket, Key=f"{version_prefix}{entry['path']}")["Body"]
        except ClientError as error:
            raise PromotionError(f"s3://{bucket}/{version_prefix}{entry['path']} is missing.") from error
        size = 0
        while chunk := body.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        seen.append({"path": entry["path"], "sha256": digest.hexdigest(), "size": size})
    actual = tree_digest(seen)
    if actual != expected_digest or manifest["tree_digest"] != expected_digest:
        raise PromotionError(
            f"Digest mismatch at s3://{bucket}/{prefix}: expected {expected_digest}, the files "
            f"hash to {actual} and the manifest says {manifest['tree_digest']}."
        )
    return manifest


def remove(s3, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        if chunk:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk]})


def write_record(s3, bucket: str, record: dict[str, Any]) -> str:
    """Keep the record under promotions/ and as promotions/latest.json, with the
    key of the record it replaces as `previous` (what a failed rollout returns to)."""
    key = f"{RECORDS_PREFIX}{record['time'].replace(':', '')}-{record['digest'][:12]}.json"
    try:
        record["previous"] = read_record(s3, bucket, LATEST_RECORD)["record"]
    except PromotionError:
        record["previous"] = None
    record["record"] = key
    body = json.dumps(record, indent=2, sort_keys=True).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    s3.put_object(Bucket=bucket, Key=LATEST_RECORD, Body=body, ContentType="application/json")
    return key


def resolve_record(s3, bucket: str, key: str) -> str:
    """`previous` names the record before the latest one; any other key is itself."""
    if key != "previous":
        return key
    previous = read_record(s3, bucket, LATEST_RECORD).get("previous")
    if not previous:
        raise PromotionError(f"s3://{bucket}/{LATEST_RECORD} has no previous promotion to return to.")
    return previous


def read_record(s3, bucket: str, key: str) -> dict[str, Any]:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as error:
        raise PromotionError(f"No promotion record s3://{bucket}/{key}.") from error
