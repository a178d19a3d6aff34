#!/usr/bin/env python3
"""CDK entry point: `-c stage=NAME` (default dev) picks the stage to synthesize.

The only place the app reads the environment: CDK_DEFAULT_ACCOUNT is dev's
fallback account, and dev's fallback region follows the region rule of
`stacks/region.py`, the same one every command-line tool applies.
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from stacks.config import ConfigError
from stacks.region import environment_region
from stacks.stage import add_stage


def main() -> int:
    app = cdk.App()
    try:
        add_stage(
            app,
            app.node.try_get_context("stage") or "dev",
            default_account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            default_region=environment_region(os.environ),
        )
    except ConfigError as error:
        # One line, and nothing synthesized.
        print(f"Configuration error: {error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
