"""`make deploy`, `make diff` and `make destroy`'s first step: the stage's credentials resolve.

Without usable credentials the CDK CLI ends in "Unable to resolve AWS account to
use", which names neither the cause nor the fix. This asks STS who the
credentials are, as the CLI does to find the account, and ends an expected
failure (no credentials, a profile this machine lacks, an expired SSO session,
another account's credentials for a pinned stage) in tools/cli.py's one line and
exit code 1, before the CLI runs. `make synth` needs no credentials and does
not run it.
"""

from __future__ import annotations

import argparse
import sys

from delivery.deployed import DeployedStage, deployed_stage
from tools.cli import run


def checked_stage(stage: str) -> DeployedStage:
    """The stage of cdk.json, reached with credentials that STS accepts."""
    deployed = deployed_stage(stage)
    # The STS API reference's GetCallerIdentity: "No permissions are required"; only
    # credentials that cannot be used fail it.
    deployed.client("sts").get_caller_identity()
    return deployed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    checked_stage(parser.parse_args(argv).stage)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
