"""`make rehearse`: the README's commands, exactly as written, on emulators.

A user (`user.py`) runs, in a copy of the project, the commands the README
gives: bootstrap, deploy, logs, digest, smoke, diff, updates (one that fails),
a pinned stage's first deploy, promotions, a rollback, prod's destroy refused
by termination protection, a stage switched to instances, and destroy. After each command the emulated account
(`account.py`) is inspected for what the command should have done. What
differs from a real account is printed with `!`, never as `✓`, and a failed
check names the step it belongs to.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from rehearsal.account import Account
from rehearsal.account_steps import AccountSteps
from rehearsal.dev_steps import DevSteps
from rehearsal.emulators import ACCOUNT, REGION, emulators
from rehearsal.promotion_steps import PromotionSteps
from rehearsal.steps import RehearsalFailed, check
from rehearsal.user import User, copy_project

__all__ = ["RehearsalFailed", "rehearse"]


class Rehearsal(AccountSteps, DevSteps, PromotionSteps):
    """One run of the scenario; `steps` names what was verified, in order."""

    def __init__(self, aws, workdir: pathlib.Path, hub_url: str, out: Callable[[str], None] = print) -> None:
        self.aws, self.hub_url, self.out = aws, hub_url, out
        self.user = User(workdir, aws.user_env, out)
        self.account = Account(aws)
        self.steps: list[str] = []

    def run(self) -> list[str]:
        copy_project(self.user.project)
        self.user.edit_config(self.point_at_emulators)
        self.note(
            "the copy's cdk.json: dev packages demo models from a loopback hub; staging's and prod's "
            f"account and region are the emulators' ({ACCOUNT}, {REGION})"
        )
        check(self.user.region == REGION, f"dev's region would be {self.user.region}, not the emulators' {REGION}")
        for name, action in (
            ("unknown stage", self.refuses_an_unknown_stage),
            ("bootstrap", self.bootstraps),
            ("deploy dev", self.deploys_dev),
            ("follow dev", self.follows_and_calls_dev),
            ("staging's first deploy", self.deploys_pinned_staging),
            ("promote v1", lambda: self.promotes("v1")),
            ("update dev", self.diff_then_update),
            ("runtime limit", self.runtime_limit_starts_no_job),
            ("failed update", self.failed_update_rolls_back),
            ("promote v2", lambda: self.promotes("v2")),
            ("roll back", self.rolls_back),
            ("prod diff", self.diffs_prod),
            ("prod destroy", self.refuses_to_destroy_prod),
            ("destroy staging", lambda: self.destroys("staging")),
            ("dev on instances", self.dev_on_instances),
            ("destroy dev", lambda: self.destroys("dev")),
            ("strict", self.strict_sagemaker_saw_everything),
        ):
            with self.step(name):
                action()
        return self.steps

    def point_at_emulators(self, stages: dict[str, Any]) -> None:
        stages["dev"]["model"]["hub_handle"] = f"{self.hub_url}/v1"
        for stage in ("staging", "prod"):
            stages[stage]["account"], stages[stage]["region"] = ACCOUNT, REGION


def rehearse(out: Callable[[str], None] = print) -> tuple[list[str], list[str]]:
    """Run the scenario; the steps verified and the commands run, in order."""
    from fixtures.demo_model import compressed_archive, save_text_model
    from fixtures.hub_server import HubServer

    with tempfile.TemporaryDirectory(prefix="rehearsal-") as work:
        workdir = pathlib.Path(work)
        # Two different models: each version of the handle has its own tree digest.
        archives = {
            f"v{seed}": compressed_archive(save_text_model(str(workdir / f"demo{seed}" / "model"), seed))
            for seed in (1, 2)
        }
        with HubServer() as hub, emulators(workdir) as aws:
            for version, archive in archives.items():
                hub.routes[f"/{version}"] = (200, archive)
            out(
                f"emulators: ministack {aws.ministack_url}, SageMaker {aws.sagemaker.url} "
                f"(moto {aws.moto_url}); hub {hub.url}"
            )
            rehearsal = Rehearsal(aws, workdir, hub.url, out)
            try:
                return rehearsal.run(), rehearsal.user.commands
            except RehearsalFailed as failure:
                raise RehearsalFailed(f"{failure}\n(the emulators' logs are kept in {keep_logs(workdir)})") from failure


def keep_logs(workdir: pathlib.Path) -> pathlib.Path:
    """Copy the emulators' logs out of the work folder, which is deleted."""
    kept = pathlib.Path(tempfile.mkdtemp(prefix="rehearsal-logs-"))
    for log in workdir.glob("*.log"):
        shutil.copy(log, kept)
    return kept
