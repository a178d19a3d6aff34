"""`make digest STAGE=...`: print the tree digest the stage's serving stack reports.

CI passes the digest the dev job tested to the later promotions, which refuse
to ship anything else.
"""

from __future__ import annotations

import argparse
import sys

from delivery.artifacts import stage_artifact
from delivery.deployed import deployed_stage
from tools.cli import run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    stage = deployed_stage(args.stage)
    print(stage_artifact(stage.client("cloudformation"), stage.config.names)[1])
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
