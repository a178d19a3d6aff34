"""The rehearsal's user: a copy of the project and a shell that runs the README's commands.

The copy links the installed tool folders (make sees them as installed) and
differs from the project only in its cdk.json, where an account would supply
what the emulators supply here. The shell is a user's: a home of its own (no
AWS or CDK configuration of this machine, so a profile or region there cannot
leak in; no CI runner's variables), the emulators' endpoints and throwaway credentials, CDK telemetry
off, and not inside another make. Commands run on a terminal, where a prompt
the scenario expects is answered as a person would.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
from collections.abc import Callable
from typing import Any

from rehearsal import terminal
from stacks.stage.region import environment_region

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Installed tool folders, linked into the copy.
_LINKED = (".venv", ".venv-emulators", ".venv-checkov", "node_modules")
_NOT_COPIED = shutil.ignore_patterns(".git", *_LINKED, "cdk.out", "__pycache__", ".pytest_cache", "*.pyc")
# `--require-approval broadening` and `cdk destroy`: a person says yes.
ANSWERS = {"Do you wish to deploy these changes? (y/n)": "y\n", "Are you sure you want to delete": "y\n"}
# Not a person's shell: another make's state, and a CI runner's markers (with
# CI=true a promotion demands DIGEST, and the CDK CLI prints its messages on stdout).
_DROPPED_NAMES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "CI")
_DROPPED_PREFIXES = ("AWS_", "CDK_", "GITHUB_")


class CommandFailed(AssertionError):
    """A command the scenario expected to succeed did not."""


def copy_project(target: pathlib.Path) -> None:
    # copy2 keeps modification times, so make does not reinstall the linked tools.
    shutil.copytree(ROOT, target, ignore=_NOT_COPIED, copy_function=shutil.copy2)
    for name in _LINKED:
        (target / name).symlink_to(ROOT / name, target_is_directory=True)


class User:
    def __init__(self, workdir: pathlib.Path, endpoints: dict[str, str], out: Callable[[str], None]) -> None:
        self.project, self.out = workdir / "project", out
        home = workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES) and k not in _DROPPED_NAMES},
            "HOME": str(home),
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            **endpoints,
        }
        self.commands: list[str] = []

    @property
    def region(self) -> str:
        """dev's region, as the app and every tool will resolve it in this shell."""
        return environment_region(self.env)

    def run(self, *words: str, expect_success: bool = True) -> terminal.Finished:
        self.out(f"$ {' '.join(words)}")
        self.commands.append(" ".join(words))
        finished = terminal.run(list(words), self.project, self.env, ANSWERS)
        if expect_success and finished.returncode != 0:
            raise CommandFailed(f"`{finished.command}` failed ({finished.returncode}):\n{finished.output[-4000:]}")
        return finished

    def edit_config(self, edit: Callable[[dict[str, Any]], None]) -> None:
        path = self.project / "cdk.json"
        document = json.loads(path.read_text())
        edit(document["context"]["stages"])
        path.write_text(json.dumps(document, indent=2))
