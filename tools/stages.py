"""`make synth`'s list of stages: the names cdk.json declares, one line on a bad file."""

from __future__ import annotations

import pathlib
import sys

from stacks.stage.config import stage_names
from tools.cli import run

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    print(" ".join(stage_names(ROOT / "cdk.json")))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
