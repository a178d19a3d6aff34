"""`make promote FROM=dev TO=staging`: ship the artifact that passed one stage to the next.

Reads the source stage's artifact and tree digest from its serving stack's
outputs (an artifact only where the stage's own writers put it: its packaging
jobs' output, or a promoted copy; `artifacts.source_artifact`), copies the artifact into the target stage's bucket under
`artifacts/promoted/<digest>/` in the form the target serves (`model/` on
instances, `model.tar.gz` serverless), re-hashes it there, deploys the target stage
pinned to that copy (its assembly: built once by CI, `ASSEMBLY=`, or synthesized
now; no packaging job), smoke-tests the target and records what was promoted,
what it replaced, the assembly it deployed and the smoke verdict in the target
bucket (`promotions/`). From a stage that itself serves promoted copies
(staging to prod), only a digest that stage verified (a passing smoke test in
its log) is promoted. A rollback serves an earlier record again, with the
assembly recorded beside it: `make promote TO=prod RECORD=promotions/<file>`,
`RECORD=previous` to undo the newest deploy, or `RECORD=last-verified` for the newest
verified state (`records.resolve`). Anything wrong (missing
stack, missing artifact, digest mismatch) stops before the deploy; a promoted
copy that does not verify is reported and left alone, never deleted; whatever
happens, the stage's state at the end is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from delivery import artifact_copy, artifacts, preflight, records, restorable
from delivery import assembly as stage_assembly
from delivery.artifacts import PromotionError
from delivery.deployed import deployed_stage
from delivery.rollback import rollback
from delivery.smoke import smoke_stage
from delivery.target import (
    Deploy,
    Smoke,
    StageAccess,
    after_start,
    fits_layout,
    fits_memory,
    serving_now,
    stage_access,
    state_line,
    verdict,
)
from stacks.stage.config import load_from_cdk_json, read_context
from tools.cli import UserError, run

ROOT = pathlib.Path(__file__).resolve().parent.parent


def promote(
    source: StageAccess,
    target: StageAccess,
    deploy: Deploy,
    commit: str,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    expected_digest: str | None = None,
    smoke: Smoke | None = None,
    assembly: pathlib.Path | None = None,
) -> dict[str, Any]:
    uri, digest = artifacts.source_artifact(source.cloudformation, source.names, source.promoted)
    if expected_digest and digest != expected_digest:
        # The source stage was redeployed since the run that tested this artifact.
        raise PromotionError(
            f"{source.stage} now serves {digest}, not the tested {expected_digest}; "
            "promote from the run that tested what the source serves."
        )
    if source.promoted:
        _require_verified(source, digest)
    bucket = artifacts.export_value(target.cloudformation, target.names.bucket_name_export)
    writer = target.writing()
    key = artifacts.promoted_key(digest, archive=target.serverless)
    copy_uri = f"s3://{bucket}/{key}"
    manifest = artifact_copy.verified_copy(source.s3, uri, writer.s3, copy_uri, digest, partial(fits_layout, target))
    fits_memory(target, manifest)
    facts = {
        "source_stage": source.stage,
        "source_artifact": uri,
        "digest": digest,
        "target_stage": target.stage,
        "target_artifact": copy_uri,
        "replaced": records.served_by(writer.s3, bucket, serving_now(target)),
        "time": now().isoformat(timespec="seconds"),
        "commit": commit,
    }
    start = records.started(writer.s3, bucket, facts)
    again = (
        "Fix the cause, then run the same promotion again, or return to the last verified state: "
        f"make promote TO={target.stage} RECORD=last-verified"
    )
    with after_start(start, target.stage, again):
        deployed = deploy(target.stage, key, digest, assembly)
        verdict_ = verdict(smoke, target.stage)
        # Assumed again: a session chained from CI's role lasts at most an hour, and a
        # blue/green deploy with its smoke test may take longer.
        writer = target.writing()
        record = {
            **facts,
            "started": start["record"],
            # The infrastructure that served it, for a rollback to restore with it.
            "assembly": stage_assembly.store(writer.s3, bucket, deployed) if deployed else None,
            "time": now().isoformat(timespec="seconds"),
            "smoke": verdict_,
        }
        return records.write(writer.s3, bucket, record)


def _require_verified(source: StageAccess, digest: str) -> None:
    """A stage that serves promoted copies hands on only a digest its own log shows
    it verified (a passing smoke test), e.g. prod takes only what staging verified."""
    bucket = artifacts.export_value(source.cloudformation, source.names.bucket_name_export)
    for record in records.log(source.s3, bucket):
        if record.get("digest") == digest and records.verified(record):
            return
    raise PromotionError(
        f"{source.stage} has no promotion of {digest} whose smoke test passed: promote only what "
        f"{source.stage} verified."
    )


def cdk_deploy(
    stage: str, artifact_key: str, digest: str, assembly: pathlib.Path | None, serving_only: bool = False
) -> pathlib.Path:
    """Deploy `stage` pinned to `artifact_key` (no job runs, the serving stack reports
    `digest`): the given assembly, checked to pin exactly that, or one synthesized
    now from this checkout, checked against the endpoint as deployed (`preflight.py`).
    Returns the assembly deployed.

    A rollback (`serving_only`) deploys the serving stack alone: the storage stack
    holds the bucket's guards and roles, which an earlier commit's would take back
    to what they were. Of a stored assembly it takes only the serving template,
    which `rollback` has checked, into an assembly synthesized now
    (`restorable.transplant`): the stored manifests are never what the CLI reads."""
    config = load_from_cdk_json(ROOT / "cdk.json", stage, os.environ)
    if serving_only:
        fresh = stage_assembly.build(stage, artifact_key, digest, ROOT / "cdk.out" / f"rollback-{stage}")
        if assembly is not None:
            restorable.transplant(restorable.template_of(assembly, config.names), fresh, config.serving_stack_name)
        assembly = fresh
    elif assembly is None:
        assembly = stage_assembly.build(stage, artifact_key, digest, ROOT / "cdk.out" / f"promote-{stage}")
    stage_assembly.require_pinned(assembly, config.serving_stack_name, artifact_key, digest)
    preflight.check(deployed_stage(stage), assembly)
    stage_assembly.deploy(assembly, only=config.serving_stack_name if serving_only else None)
    return assembly


def current_commit() -> str:
    """The checkout's commit, or "unknown" outside a git checkout (or without git)."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", help="stage to promote from")
    parser.add_argument("--to", dest="target", required=True, help="stage to promote to")
    parser.add_argument("--source-role-arn", help="role to assume to read the source stage's account")
    parser.add_argument(
        "--source-region", help="the source stage's region, when cdk.json leaves it to the environment (dev)"
    )
    parser.add_argument(
        "--record",
        help="roll back: a promotions/ record key in the target bucket, 'previous' (undo the newest deploy) "
        "or 'last-verified' (the newest state whose smoke test passed)",
    )
    parser.add_argument("--expect-digest", help="refuse unless the source serves this tree digest (required in CI)")
    parser.add_argument(
        "--assembly",
        type=pathlib.Path,
        help="deploy this assembly (make assembly), built once for the commit, instead of synthesizing one",
    )
    args = parser.parse_args(argv)
    if bool(args.source) == bool(args.record):
        parser.error("give either --from (promote) or --record (roll back)")
    if args.source and args.expect_digest is not None and not artifacts.DIGEST.match(args.expect_digest):
        raise UserError(
            f"DIGEST {args.expect_digest[:80]!r} is not a tree digest (64 lowercase hex "
            "characters): refusing to promote."
        )
    if args.source and args.expect_digest is None and os.environ.get("CI") == "true":
        # In CI an empty digest must never switch the check off.
        raise UserError("In CI a promotion needs DIGEST=<the digest the previous stage tested>.")
    commit = os.environ.get("GITHUB_SHA") or current_commit()
    for stage in filter(None, (args.source, args.target)):
        # Both stages are known before any AWS call.
        load_from_cdk_json(ROOT / "cdk.json", stage, os.environ)
    if args.source and not args.source_region and os.environ.get("CI") == "true":
        # The job's region is the target's: a source whose region cdk.json leaves to
        # the environment would silently be looked for there (an unset repository
        # variable arrives as SOURCE_REGION="").
        if read_context(ROOT / "cdk.json")["stages"][args.source].get("region") is None:
            raise UserError(
                f"In CI a promotion from {args.source} needs SOURCE_REGION=<{args.source}'s region>: "
                "cdk.json leaves it to the environment, which is the target's here."
            )
    target = stage_access(args.target, target=True)
    try:
        try:
            if args.record:
                record = rollback(
                    target, args.record, partial(cdk_deploy, serving_only=True), commit, smoke=smoke_stage
                )
            else:
                source = stage_access(args.source, args.source_role_arn, region=args.source_region)
                record = promote(
                    source,
                    target,
                    cdk_deploy,
                    commit,
                    expected_digest=args.expect_digest,
                    smoke=smoke_stage,
                    assembly=args.assembly,
                )
        except PromotionError as error:
            # Raised before any deploy started (after it, `after_start` says so). A
            # rollback claims nothing of the stage: the promotion before it may have changed it.
            stopped = "Rollback stopped" if args.record else "Promotion stopped, nothing changed"
            raise UserError(f"{stopped}: {error}") from error
        print(json.dumps(record, indent=2))
    finally:
        # Whatever the outcome, even an unexpected error or an interrupt: a failed
        # deploy may have changed the stage, or CloudFormation rolled it back.
        try:
            print(state_line(target))
        except Exception as error:  # noqa: BLE001 - the outcome above is what propagates
            reason = " ".join(str(error).split())
            print(f"{target.stage}'s state could not be read: {type(error).__name__}: {reason}")
    summarize(record, os.environ.get("GITHUB_STEP_SUMMARY"))
    if not record["smoke"]["passed"]:
        print(
            f"The smoke test of {args.target} failed: {record['smoke']['problems']}; recorded in "
            f"{record['record']}. Roll back with: make promote TO={args.target} RECORD=last-verified",
            file=sys.stderr,
        )
        return 1
    return 0


def summarize(record: dict[str, Any], summary_file: str | None) -> None:
    """In GitHub Actions, the record in the run's summary: what a prod approver reads
    (the digest and staging's smoke report) before approving."""
    if not summary_file:
        return
    smoke = record.get("smoke") or {}
    lines = [
        f"### {record['target_stage']}: "
        + (f"rolled back to {record['rollback_to']}" if record.get("rollback_to") else "promoted"),
        f"- digest `{record['digest']}` from {record.get('source_stage')}, commit `{record['commit']}`",
        f"- smoke test: {'passed' if smoke.get('passed') else 'FAILED'}"
        f"{', values checked' if smoke.get('checked_values') else ''}, latency {smoke.get('latency_ms')} ms"
        + "".join(f"\n  - {problem}" for problem in smoke.get("problems", [])),
        f"- record `{record['record']}`",
    ]
    with open(summary_file, "a") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(run(main))
