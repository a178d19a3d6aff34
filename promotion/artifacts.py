"""Stage artifacts in S3: where a stage's artifact is, verifying its digest, and the
promotion records kept beside it. Plain functions over boto3 clients; the two
artifact forms are `artifact_forms.py`'s."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from packaging_job.packager.manifest import tree_digest
from promotion import artifact_forms as forms
from promotion.deployed import serving_outputs
from tools.cli import UserError

PROMOTED_PREFIX = "artifacts/promoted/"
RECORDS_PREFIX = "promotions/"
LATEST_RECORD = f"{RECORDS_PREFIX}latest.json"


class PromotionError(UserError):
    """Promotion stopped before changing anything; the message says why."""


def stage_artifact(cloudformation, stack: str) -> tuple[str, str]:
    """(artifact URI, tree digest) a stage's serving stack reports."""
    outputs = serving_outputs(cloudformation, stack)
    missing = [key for key in ("ArtifactLocation", "TreeDigest") if key not in outputs]
    if missing:
        raise PromotionError(
            f"Stack {stack} has no {' or '.join(missing)} output: use a stage whose serving "
            "stack reports its artifact's digest (one that packaged, or was promoted)."
        )
    uri = outputs["ArtifactLocation"]
    if not uri.endswith(("/", ".tar.gz")):
        raise PromotionError(f"{uri} is neither an artifact prefix nor a model.tar.gz.")
    return uri, outputs["TreeDigest"]


def promoted_key(digest: str, archive: bool) -> str:
    """Where a promoted copy lives in a stage bucket, by its full tree digest and form."""
    return f"{PROMOTED_PREFIX}{digest}/model.tar.gz" if archive else f"{PROMOTED_PREFIX}{digest}/model/"


def export_value(cloudformation, name: str) -> str:
    for page in cloudformation.get_paginator("list_exports").paginate():
        for export in page["Exports"]:
            if export["Name"] == name:
                return export["Value"]
    raise PromotionError(f"No CloudFormation export {name}: deploy the target stage's storage first.")


def verify(s3, uri: str, expected_digest: str) -> dict[str, Any]:
    """Re-hash every file of the artifact at `uri` (either form): exactly the files
    the manifest lists, each as it says, and the tree digest `expected_digest`."""
    manifest, present = None, {}
    try:
        for file in forms.files(s3, uri):
            if file.path == forms.MANIFEST:
                manifest = json.loads(file.stream.read())
            else:
                present[file.path] = forms.hashed(file)
    except forms.ArtifactError as error:
        raise PromotionError(str(error)) from error
    if manifest is None:
        raise PromotionError(f"{uri} holds no {forms.MANIFEST}.")
    # Manifest paths are relative to the TF Serving version folder (code/ to the root);
    # nothing but the listed files may be served from the artifact.
    version = f"{manifest['model_name']}/{manifest['model_version']}/"
    listed = {version + e["path"]: e for e in manifest["files"]}
    listed.update({f"code/{e['path']}": e for e in manifest.get("code_files", [])})
    if set(present) != set(listed):
        raise PromotionError(
            f"{uri} does not hold exactly the manifest's files: unlisted "
            f"{sorted(set(present) - set(listed))[:5]}, missing {sorted(set(listed) - set(present))[:5]}."
        )
    changed = [path for path, entry in listed.items()
               if (present[path]["sha256"], present[path]["size"]) != (entry["sha256"], entry["size"])]
    actual = tree_digest([{**present[version + e["path"]], "path": e["path"]} for e in manifest["files"]])
    if changed or actual != expected_digest or manifest["tree_digest"] != expected_digest:
        raise PromotionError(
            f"Digest mismatch at {uri}: expected {expected_digest}, the files hash to {actual}, the "
            f"manifest says {manifest['tree_digest']}, changed: {changed[:5]}."
        )
    return manifest


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
