"""`make promote FROM=dev TO=staging`: ship the artifact that passed one stage to the next.

Reads the source stage's artifact and tree digest from its serving stack's
outputs, copies the artifact into the target stage's bucket under
`artifacts/promoted/<digest>/` in the form the target serves (`model/` on
instances, `model.tar.gz` serverless), re-hashes it there, deploys the target stage
pinned to that copy (`cdk deploy -c artifact=...`, no packaging job), and
records what was promoted in the target bucket (`promotions/`). A rollback is a
promotion of an earlier record: `make promote TO=prod RECORD=promotions/<file>`,
or `RECORD=previous` for the one the latest promotion replaced.
Anything wrong (missing stack, missing artifact, digest mismatch) stops before
the deploy, and a copy that does not verify is removed again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import subprocess
import sys
from dataclasses import dataclass, replace
from typing import Any, Callable

from promotion import artifact_forms as forms
from promotion import artifacts, records
from promotion.artifacts import PromotionError
from promotion.deployed import deployed_stage
from stacks.config import load_from_cdk_json
from stacks.packaging_handler.handler import memory_problem
from tools.cli import UserError, run

ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class StageAccess:
    """A stage's name, its stack-name prefix, the clients that reach its account, and
    what its endpoint takes: serverless serves only a model.tar.gz (rule
    serverless-model-data), instances an uncompressed prefix. As a target, its
    `s3` client acts as the stage's promotion role, the only principal the
    bucket lets write promoted copies and records (`stacks/bucket_guard.py`)."""

    stage: str
    prefix: str
    cloudformation: Any
    s3: Any
    serverless_memory_mb: int | None = None
    # Given the promotion role's ARN, an s3 client acting as it (None: `s3` already may write).
    assume: Callable[[str], Any] | None = None

    @property
    def serverless(self) -> bool:
        return self.serverless_memory_mb is not None

    @property
    def serving_stack(self) -> str:
        return f"{self.prefix}-serving"

    @property
    def bucket_export(self) -> str:
        return f"{self.prefix}-bucket-name"

    @property
    def promotion_role_export(self) -> str:
        return f"{self.prefix}-promotion-role-arn"

    def writing(self) -> "StageAccess":
        """This stage with its s3 client acting as the stage's promotion role, the only
        principal its bucket lets write promoted copies and records."""
        if self.assume is None:
            return self
        role = artifacts.export_value(self.cloudformation, self.promotion_role_export)
        return replace(self, s3=self.assume(role), assume=None)


def promote(
    source: StageAccess,
    target: StageAccess,
    deploy: Callable[[str, str, str], None],
    commit: str,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    expected_digest: str | None = None,
) -> dict[str, Any]:
    uri, digest = artifacts.stage_artifact(source.cloudformation, source.serving_stack)
    if expected_digest and digest != expected_digest:
        # The source stage was redeployed since the run that tested this artifact.
        raise PromotionError(
            f"{source.stage} now serves {digest}, not the tested {expected_digest}; "
            "promote from the run that tested what the source serves."
        )
    bucket = artifacts.export_value(target.cloudformation, target.bucket_export)
    target = target.writing()
    key = artifacts.promoted_key(digest, archive=target.serverless)
    copy_uri = f"s3://{bucket}/{key}"
    manifest = _copy_once(source, uri, target, copy_uri, digest)
    fits_memory(target, manifest)
    deploy(target.stage, key, digest)
    record = {
        "source_stage": source.stage,
        "source_artifact": uri,
        "digest": digest,
        "target_stage": target.stage,
        "target_artifact": copy_uri,
        "time": now().isoformat(timespec="seconds"),
        "commit": commit,
    }
    return records.write(target.s3, bucket, record)


def _copy_once(source: StageAccess, uri: str, target: StageAccess, copy_uri: str, digest: str) -> dict[str, Any]:
    """The verified promoted copy: written once, never overwritten or deleted.

    A copy already there (a re-run, or after a rollback) is verified and used,
    or, if it does not verify, reported and left alone: an endpoint may serve it.
    A fresh copy is written with conditional writes (nothing is replaced) and
    verified; if that fails, only what this run wrote is removed.
    """
    bucket, _ = forms.split(copy_uri)
    try:
        if forms.exists(target.s3, copy_uri):
            try:
                return artifacts.verify(target.s3, copy_uri, digest)
            except PromotionError as error:
                raise PromotionError(
                    f"{error} This promoted copy was there before and is left alone (an endpoint may "
                    "serve it): investigate who changed it."
                ) from error
        written = forms.copy(source.s3, uri, target.s3, copy_uri)
    except forms.ArtifactError as error:
        raise PromotionError(str(error)) from error
    try:
        return artifacts.verify(target.s3, copy_uri, digest)
    except PromotionError:
        forms.remove(target.s3, bucket, written)
        raise


def rollback(
    target: StageAccess,
    record_key: str,
    deploy: Callable[[str, str, str], None],
    commit: str,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> dict[str, Any]:
    """Serve an earlier promotion's artifact again, after checking the record names a
    promoted copy of this stage (content-addressed by its digest) and the copy is intact."""
    bucket = artifacts.export_value(target.cloudformation, target.bucket_export)
    target = target.writing()
    record_key = records.resolve(target.s3, bucket, record_key)
    earlier = records.require(target.s3, bucket, record_key)
    digest = str(earlier.get("digest", ""))
    allowed = {f"s3://{bucket}/{artifacts.promoted_key(digest, archive)}" for archive in (False, True)}
    if earlier.get("target_stage") != target.stage or earlier.get("target_artifact") not in allowed:
        raise PromotionError(
            f"Record {record_key} does not name a promoted copy of stage {target.stage} for its digest "
            f"({earlier.get('target_artifact')}): refusing to serve it."
        )
    manifest = artifacts.verify(target.s3, earlier["target_artifact"], digest)
    fits_memory(target, manifest)
    _, key = forms.split(earlier["target_artifact"])
    deploy(target.stage, key, digest)
    record = {key_: value for key_, value in earlier.items() if key_ not in ("previous", "record")}
    record.update(time=now().isoformat(timespec="seconds"), commit=commit, rollback_to=record_key)
    return records.write(target.s3, bucket, record)


def fits_memory(target: StageAccess, manifest: dict[str, Any]) -> None:
    """A serverless target must hold the model (the packaging handler's sizing rule)."""
    if target.serverless:
        problem = memory_problem(manifest["total_bytes"], target.serverless_memory_mb)
        if problem:
            raise PromotionError(f"{target.stage} is serverless and {problem}.")


def deploy_command(stage: str, artifact_key: str, digest: str) -> list[str]:
    """`cdk deploy` of `stage` pinned to `artifact_key`; no job runs, and the
    serving stack reports `digest` for the next promotion."""
    return [
        str(ROOT / "node_modules" / ".bin" / "cdk"), "deploy", "-c", f"stage={stage}",
        "-c", f"artifact={artifact_key}", "-c", f"artifact_digest={digest}",
        "--all", "--require-approval", "never",
    ]


def cdk_deploy(stage: str, artifact_key: str, digest: str) -> None:
    result = subprocess.run(deploy_command(stage, artifact_key, digest), cwd=ROOT)
    if result.returncode != 0:
        raise UserError(
            f"The deploy of stage {stage} pinned to {artifact_key} failed (cdk exit code "
            f"{result.returncode}, its output is above); the verified copy stays, no promotion "
            "was recorded: fix the cause and run the same promotion again."
        )


def stage_access(stage: str, role_arn: str | None = None, target: bool = False) -> StageAccess:
    """A source stage, read with the caller's credentials (or `role_arn`), or a target
    stage, whose bucket is written as its promotion role."""
    deployed = deployed_stage(stage, role_arn=role_arn)
    config = deployed.config
    return StageAccess(
        stage, f"{config.project}-{stage}", deployed.client("cloudformation"), deployed.client("s3"),
        config.serving.memory_mb if config.is_serverless else None,
        assume=(lambda role: deployed.as_role(role, f"promote-{stage}").client("s3")) if target else None,
    )


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
    parser.add_argument("--record", help="roll back: a promotions/ record key in the target "
                        "bucket, or 'previous' for the one before the latest")
    parser.add_argument("--expect-digest", help="refuse unless the source serves this tree digest")
    args = parser.parse_args(argv)
    if bool(args.source) == bool(args.record):
        parser.error("give either --from (promote) or --record (roll back)")
    commit = os.environ.get("GITHUB_SHA") or current_commit()
    for stage in filter(None, (args.source, args.target)):
        # Both stages are known before any AWS call.
        load_from_cdk_json(ROOT / "cdk.json", stage, os.environ)
    try:
        target = stage_access(args.target, target=True)
        if args.record:
            record = rollback(target, args.record, cdk_deploy, commit)
        else:
            source = stage_access(args.source, args.source_role_arn)
            record = promote(source, target, cdk_deploy, commit, expected_digest=args.expect_digest)
    except PromotionError as error:
        raise UserError(f"Promotion stopped, nothing changed: {error}") from error
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
