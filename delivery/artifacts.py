"""Stage artifacts in S3: where a stage's artifact is, where a promoted copy lives, and
verifying an artifact against its digest. Plain functions over boto3 clients; the
two artifact forms are `artifact_forms.py`'s, the promotion records `records.py`'s."""

from __future__ import annotations

import json
import re
from typing import Any

from delivery import artifact_forms as forms
from delivery.deployed import serving_outputs
from packaging_job.packager.manifest import DIGEST_VERSION, tree_digest
from stacks.stage.names import ServingOutputs, StageNames, served_folder
from tools.cli import UserError

PROMOTED_PREFIX = "artifacts/promoted/"
# A tree digest as manifests, stack outputs and DIGEST= spell it.
DIGEST = re.compile(r"^[0-9a-f]{64}$")


class PromotionError(UserError):
    """Promotion stopped before changing anything; the message says why."""


def stage_artifact(cloudformation, names: StageNames) -> tuple[str, str]:
    """(artifact URI, tree digest) a stage's serving stack reports."""
    outputs = serving_outputs(cloudformation, names)
    missing = [key for key in (ServingOutputs.ARTIFACT_LOCATION, ServingOutputs.TREE_DIGEST) if key not in outputs]
    if missing:
        raise PromotionError(
            f"Stack {names.serving_stack} has no {' or '.join(missing)} output: use a stage whose serving "
            "stack reports its artifact's digest (one that packaged, or was promoted)."
        )
    uri = outputs[ServingOutputs.ARTIFACT_LOCATION]
    if not uri.endswith(("/", ".tar.gz")):
        raise PromotionError(f"{uri} is neither an artifact prefix nor a model.tar.gz.")
    return uri, outputs[ServingOutputs.TREE_DIGEST]


def source_artifact(cloudformation, names: StageNames, promoted: bool) -> tuple[str, str]:
    """(artifact URI, tree digest) of a promotion's source stage, which must be where
    only the stage's own writers put it (the bucket policy, `stacks/storage/bucket_guard.py`):
    its packaging jobs' model artifact in its bucket, or, from a stage serving promoted copies
    (`promoted`), the promoted copy of that digest in its bucket. Whoever may deploy
    the source stage could otherwise point its outputs at any object, written by
    anyone (the manifest's sample input and expected output, which the smoke test
    trusts, included)."""
    uri, digest = stage_artifact(cloudformation, names)
    bucket = export_value(cloudformation, names.bucket_name_export)
    if promoted:
        own = uri in {f"s3://{bucket}/{promoted_key(digest, archive)}" for archive in (False, True)}
        where = f"the promoted copy of {digest} in its bucket (s3://{bucket}/{PROMOTED_PREFIX}{digest}/)"
        remedy = f"promote into {names.stage} first, or roll it back to a promoted state"
    else:
        # Exactly a job's model artifact (ModelArtifacts.S3ModelArtifacts: `<job>/output/model.tar.gz`,
        # or the prefix `<job>/output/model/` uncompressed). Beside it SageMaker uploads
        # `output/output.tar.gz` (/opt/ml/output/data, which the model could write into while the
        # job checked it) and debugger/profiler folders: bytes no packaging check has read.
        folder = re.escape(f"s3://{bucket}/{names.packaging_output_prefix}")
        own = re.fullmatch(rf"{folder}[^/]+/output/(?:model/|model\.tar\.gz)", uri) is not None
        where = (
            f"its own packaging jobs' model artifact "
            f"(s3://{bucket}/{names.packaging_output_prefix}*/output/model/ or .../model.tar.gz)"
        )
        remedy = f"make deploy STAGE={names.stage}, so that it serves its packaging job's output"
    if not own:
        raise PromotionError(f"{names.serving_stack} reports {uri} as its artifact, not {where}: {remedy}.")
    return uri, digest


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
    the manifest lists, each as it says, and the tree digest (digest version 2:
    every served byte and path, layout and `code/` included) `expected_digest`."""
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
    _require_digest_version(manifest, uri)
    listed = {entry["path"]: entry for entry in manifest["files"]}
    if set(present) != set(listed):
        raise PromotionError(
            f"{uri} does not hold exactly the manifest's files: unlisted "
            f"{sorted(set(present) - set(listed))[:5]}, missing {sorted(set(listed) - set(present))[:5]}."
        )
    served = f"{served_folder(manifest['model_name'], manifest['model_version'])}saved_model.pb"
    if served not in listed:
        raise PromotionError(f"{uri} holds no {served}, which TF Serving would load.")
    actual = tree_digest([present[path] for path in sorted(present)])
    if actual != expected_digest or manifest["tree_digest"] != expected_digest:
        raise PromotionError(
            f"Digest mismatch at {uri}: expected {expected_digest}, the files hash to {actual}, the "
            f"manifest says {manifest['tree_digest']}."
        )
    return manifest


def listed_files(s3, uri: str, digest: str) -> tuple[bytes, dict[str, dict]]:
    """The artifact's manifest.json as stored, and the files it lists by path, once
    those are shown to make up `digest`: what a copy may write, byte for byte."""
    try:
        if not forms.exists(s3, uri):
            raise PromotionError(f"No artifact at {uri}: it was deleted or never written.")
        raw = forms.manifest_bytes(s3, uri)
        manifest = json.loads(raw)
        _require_digest_version(manifest, uri)
        entries = sorted(manifest["files"], key=lambda entry: entry["path"])
        listed = tree_digest(entries)
    except forms.ArtifactError as error:
        raise PromotionError(str(error)) from error
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise PromotionError(f"{uri}'s {forms.MANIFEST} is not a manifest ({error!r}).") from error
    if listed != digest or manifest.get("tree_digest") != digest:
        raise PromotionError(
            f"{uri}'s {forms.MANIFEST} lists files that make up {listed}, not {digest}: refusing to copy it."
        )
    return raw, {entry["path"]: entry for entry in entries}


def _require_digest_version(manifest: dict[str, Any], uri: str) -> None:
    if manifest.get("digest_version") != DIGEST_VERSION:
        raise PromotionError(
            f"{uri} was packaged before digest version {DIGEST_VERSION}: its digest does not cover "
            "its layout and code/, so it cannot be verified; package it again."
        )
