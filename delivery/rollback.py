"""`make promote TO=... RECORD=...`: serve an earlier record again, with the
assembly recorded beside it."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import tempfile
from collections.abc import Callable
from functools import partial
from typing import Any

from delivery import artifact_copy, artifacts, records
from delivery import artifact_forms as forms
from delivery import assembly as stage_assembly
from delivery.artifacts import PromotionError
from delivery.restorable import require_restorable, template_of
from delivery.target import (
    Deploy,
    Smoke,
    StageAccess,
    after_start,
    fits_layout,
    fits_memory,
    serving_now,
    settled,
    verdict,
)
from stacks.stage.config import load_from_cdk_json


def rollback(
    target: StageAccess,
    record_key: str,
    deploy: Deploy,
    commit: str,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    smoke: Smoke | None = None,
) -> dict[str, Any]:
    """Serve an earlier record's artifact again, after checking the record names a
    promoted copy of this stage (content-addressed by its digest), or what the stage
    served before its first promotion (served as a promoted copy made of it), and
    the artifact is intact."""
    # First: an update CloudFormation is still running (the failed promotion's, its
    # step killed) would refuse the deploy, and `replaced` must be what it ended as.
    settled(target)
    bucket = artifacts.export_value(target.cloudformation, target.names.bucket_name_export)
    writer = target.writing()
    earlier = records.resolve(writer.s3, bucket, record_key)
    digest = str(earlier.get("digest", ""))
    promoted = {f"s3://{bucket}/{artifacts.promoted_key(digest, archive)}" for archive in (False, True)}
    allowed = set(promoted)
    if earlier["record"] == records.BEFORE:
        allowed.add(earlier["target_artifact"])  # as the first promotion's own record says
    if earlier.get("target_stage") != target.stage or earlier.get("target_artifact") not in allowed:
        raise PromotionError(
            f"Record {earlier['record']} does not name a promoted copy of stage {target.stage} for its digest "
            f"({earlier.get('target_artifact')}): refusing to serve it."
        )
    if earlier["target_artifact"] in promoted:
        manifest = artifacts.verify(writer.s3, earlier["target_artifact"], digest)
    else:
        earlier, manifest = _promoted_copy(writer, bucket, earlier)
    fits_layout(target, manifest)
    fits_memory(target, manifest)
    _, key = forms.split(earlier["target_artifact"])
    facts = {key_: value for key_, value in earlier.items() if key_ not in _OWN_FIELDS}
    facts.update(
        time=now().isoformat(timespec="seconds"),
        commit=commit,
        rollback_to=earlier["record"],
        replaced=records.served_by(writer.s3, bucket, serving_now(target)),
    )
    with tempfile.TemporaryDirectory() as folder:
        # The recorded assembly: the infrastructure that served with this artifact,
        # checked before anything is logged or deployed.
        stored = earlier.get("assembly")
        restored = stage_assembly.restore(writer.s3, bucket, stored, pathlib.Path(folder)) if stored else None
        if restored:
            # The stage's account, as the promotion role's ARN (an export of its storage stack) names it.
            account = artifacts.export_value(target.cloudformation, target.names.promotion_role_export).split(":")[4]
            region = target.cloudformation.meta.region_name
            # Checked against the stage as this checkout configures it: the deploy
            # puts the template into an assembly this checkout synthesizes (`promote.cdk_deploy`).
            config = load_from_cdk_json(stage_assembly.ROOT / "cdk.json", target.stage, os.environ)
            require_restorable(template_of(restored, target.names), config, region, account, key)
        start = records.started(writer.s3, bucket, facts)
        again = f"Fix the cause, then run the rollback again: make promote TO={target.stage} RECORD={record_key}"
        with after_start(start, target.stage, again):
            deployed = deploy(target.stage, key, digest, restored)
            writer = target.writing()  # a fresh session, as for a promotion
            record = {
                **facts,
                "started": start["record"],
                "time": now().isoformat(timespec="seconds"),
                "smoke": verdict(smoke, target.stage),
                # What served with it now: the recorded assembly, or (a state from before the
                # first promotion, or an old record) this checkout's, stored for the next rollback.
                "assembly": stage_assembly.store(writer.s3, bucket, deployed) if deployed else None,
                "infrastructure": f"as recorded with {earlier['record']}"
                if restored
                else f"this checkout's: none was recorded with {earlier['record']}",
            }
            return records.write(writer.s3, bucket, record)


def _promoted_copy(writer: StageAccess, bucket: str, before: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the stage served before its first promotion, as the write-once promoted
    copy of its digest (made, or reused if one verifies, as a promotion does): the
    key it was served from, `pinned_artifact` say, is one other principals may
    write, so a rollback serves the copy made of it as verified, never that key.
    Returns the state as that copy, the key it came from recorded as its source,
    and the copy's manifest."""
    digest = str(before["digest"])
    copy_uri = f"s3://{bucket}/{artifacts.promoted_key(digest, archive=writer.serverless)}"
    manifest = artifact_copy.verified_copy(
        writer.s3, before["target_artifact"], writer.s3, copy_uri, digest, partial(fits_layout, writer)
    )
    moved = {
        **before,
        "source_stage": writer.stage,
        "source_artifact": before["target_artifact"],
        "target_artifact": copy_uri,
    }
    return moved, manifest


# What a record says of itself, not of the state it served.
_OWN_FIELDS = ("previous", "record", "smoke", "started", "deploy", "infrastructure")
