"""A stage as a promotion or rollback reaches it: its clients (writing as its
promotion role), what it serves now, whether it holds a model, the smoke
test's verdict on it, what a failure after a deploy's start says, and waiting
for CloudFormation to finish an update of its serving stack that is still
running."""

from __future__ import annotations

import os
import pathlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from delivery import artifacts
from delivery.artifacts import PromotionError
from delivery.deployed import deployed_stage
from packaging_job.packager.manifest import MANIFEST_NAME
from stacks.model_packaging.handler_asset.packaging_handler.job_request import memory_problem
from stacks.stage.names import StageNames, served_folder
from stacks.stage.schema import ModelConfig, ServerlessServing
from tools.cli import UserError, explain

# What the smoke test of a just-deployed stage reports (`delivery.smoke.smoke`).
Smoke = Callable[[str], dict[str, Any]]


# Deploys (stage, artifact key, digest, assembly or None) and returns the assembly
# it deployed (None: not kept).
Deploy = Callable[[str, str, str, "pathlib.Path | None"], "pathlib.Path | None"]


@dataclass(frozen=True)
class StageAccess:
    """A stage's name, the names its parts go by, the clients that reach its account, and
    what its endpoint takes: serverless serves only a model.tar.gz (rule
    serverless-model-data), instances an uncompressed prefix. As a target, its
    `s3` client acts as the stage's promotion role, the only principal the
    bucket lets write promoted copies and records (`stacks/storage/bucket_guard.py`)."""

    stage: str
    names: StageNames
    cloudformation: Any
    s3: Any
    serverless_memory_mb: int | None = None
    # Given the promotion role's ARN, an s3 client acting as it (None: `s3` already may write).
    assume: Callable[[str], Any] | None = None
    # Serves promoted copies (no packaging job of its own): as a source, it hands on
    # only what its own promotion log shows it verified.
    promoted: bool = False
    # The model its config serves (`fits_layout`); None only for a source.
    model: ModelConfig | None = None

    @property
    def serverless(self) -> bool:
        return self.serverless_memory_mb is not None

    def writing(self) -> StageAccess:
        """This stage with its s3 client acting as the stage's promotion role, the only
        principal its bucket lets write promoted copies and records."""
        if self.assume is None:
            return self
        role = artifacts.export_value(self.cloudformation, self.names.promotion_role_export)
        return replace(self, s3=self.assume(role), assume=None)


def serving_now(target: StageAccess) -> dict[str, str] | None:
    """What the target's serving stack reports it serves, or None before its first deploy."""
    try:
        uri, digest = artifacts.stage_artifact(target.cloudformation, target.names)
    except UserError:
        return None
    return {"artifact": uri, "digest": digest}


def verdict(smoke: Smoke | None, stage: str) -> dict[str, Any] | None:
    """The smoke test's verdict on the stage just deployed (None: not run)."""
    if smoke is None:
        return None
    try:
        report = smoke(stage)
    # No answer at all is a failed smoke test, recorded as such: also an AWS call that
    # failed after botocore's retries (an endpoint out of reach, a read timeout, a
    # refused call), which would otherwise stop the promotion with no verdict recorded.
    except (UserError, BotoCoreError, ClientError) as error:
        return {"passed": False, "problems": [" ".join((explain(error) or str(error)).split())]}
    return {"passed": not report["problems"], **report}


@contextmanager
def after_start(start: dict[str, Any], stage: str, again: str) -> Iterator[None]:
    """Around all that follows a deploy's "started" record: an expected failure there
    (the deploy's, or recording its outcome) says where that start is logged, how to
    see the stage's state, and `again`, what to run next; never that nothing changed."""
    try:
        yield
    except (UserError, ClientError, BotoCoreError) as error:
        # AWS refusing or failing the outcome's record or the assembly's upload is
        # expected too: the stage was deployed all the same.
        said = " ".join((explain(error) or str(error)).split())
        raise UserError(
            f"{said} Its start is logged in {start['record']}; make status STAGE={stage} shows what the "
            f"stage serves now. {again}"
        ) from error


def fits_memory(target: StageAccess, manifest: dict[str, Any]) -> None:
    """A serverless target must hold the model (the packaging handler's sizing rule)."""
    if target.serverless_memory_mb is not None:
        problem = memory_problem(manifest["total_bytes"], target.serverless_memory_mb)
        if problem:
            raise PromotionError(f"{target.stage} is serverless and {problem}.")


def fits_layout(target: StageAccess, manifest: dict[str, Any]) -> None:
    """A target on instances serves the uncompressed copy, of which its Model's role
    reads only the configured model's version folder and manifest.json
    (`stacks/serving/model_role.py`): the copy must hold that model, TF Serving's
    default model name being the config's too (`stacks/serving/stack.py`), and nothing
    else, or SageMaker's download of it would fail."""
    if target.serverless:
        return
    model = target.model
    if model is None:
        raise PromotionError(f"The model {target.stage} serves is unknown: refusing to give it an artifact.")
    name, version = manifest.get("model_name"), manifest.get("model_version")
    if name != model.name or str(version) != str(model.version):
        raise PromotionError(
            f"The artifact holds {name}/{version}, but {target.stage}'s config serves "
            f"{model.name}/{model.version}: package the configured model."
        )
    folder = served_folder(model.name, model.version)
    outside = sorted(
        path
        for path in (str(entry.get("path")) for entry in manifest.get("files", []))
        if not path.startswith(folder) and path != MANIFEST_NAME
    )
    if outside:
        code = " (the stacks never serve inference code)" if any(p.startswith("code/") for p in outside) else ""
        raise PromotionError(
            f"The artifact holds {outside[:5]} outside {folder}, which {target.stage}'s Model may not read{code}: "
            "package it without them."
        )


def stage_access(
    stage: str, role_arn: str | None = None, target: bool = False, region: str | None = None
) -> StageAccess:
    """A source stage, read with the caller's credentials (or `role_arn`), or a target
    stage, whose bucket is written as its promotion role. `region` is the stage's
    when its config leaves it to the environment (dev)."""
    environ = {**os.environ, "AWS_REGION": region, "AWS_DEFAULT_REGION": region} if region else None
    deployed = deployed_stage(stage, environ, role_arn=role_arn)
    config = deployed.config
    return StageAccess(
        stage,
        config.names,
        deployed.client("cloudformation"),
        deployed.client("s3"),
        config.serving.memory_mb if isinstance(config.serving, ServerlessServing) else None,
        assume=(lambda role: deployed.as_role(role, f"promote-{stage}").client("s3")) if target else None,
        promoted=config.packaging is None,
        model=config.model,
    )


def state_line(target: StageAccess) -> str:
    """What the stage serves now, as its serving stack reports it."""
    now = serving_now(target)
    if now is None:
        return f"{target.stage} now: its serving stack reports no artifact (not deployed, or failed)."
    return f"{target.stage} now serves {now['artifact']} (tree digest {now['digest']})."


# How long a rollback waits for an update it did not start to finish (the workflow's
# rollback steps leave it this much beside a blue/green cycle), and how often it looks.
SETTLE_MINUTES = 20
POLL_SECONDS = 30


# Why wait: a deploy killed with its step (a step timeout, a cancelled job) leaves
# CloudFormation carrying on with the update, the CDK CLI creates its change set
# without waiting for that, and CloudFormation updates no stack that is *_IN_PROGRESS
# ("Stack status codes", AWS CloudFormation User Guide). Why not CancelUpdateStack
# ("Cancel a stack update", same guide): it cannot tell the failed promotion's update
# from someone else's deploy; what it starts is CloudFormation's own rollback, another
# blue/green cycle of the endpoint, so it saves little; if that rollback fails the
# stack is UPDATE_ROLLBACK_FAILED, which no deploy can update until someone continues
# it ("Continue rolling back an update"); and the deploy role would need a permission
# it does not have. Waiting only reads, and the rollback's deploy then undoes whatever
# the update ended as.
def settled(
    target: StageAccess,
    minutes: float = SETTLE_MINUTES,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str | None:
    """The status of the target's serving stack once no operation runs on it (None: no
    such stack), polled with DescribeStacks; still in progress after `minutes`, a
    PromotionError saying so in one line."""
    stack = target.names.serving_stack
    deadline = clock() + minutes * 60
    said = False
    while True:
        try:
            (description,) = target.cloudformation.describe_stacks(StackName=stack)["Stacks"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ValidationError" and "does not exist" in str(error):
                return None
            raise
        status = description["StackStatus"]
        # REVIEW_IN_PROGRESS is a stack made for a change set nobody executed: nothing runs.
        if not status.endswith("_IN_PROGRESS") or status == "REVIEW_IN_PROGRESS":
            return status
        if clock() >= deadline:
            raise PromotionError(
                f"{stack} is still {status} after {minutes:g} minutes: nothing was rolled back; once "
                f"CloudFormation has finished, run the same make promote TO={target.stage} RECORD=... again."
            )
        if not said:
            print(
                f"{stack} is {status}: waiting up to {minutes:g} minutes for CloudFormation to finish "
                "that update before deploying.",
                file=sys.stderr,
            )
            said = True
        sleep(POLL_SECONDS)
