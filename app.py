#!/usr/bin/env python3
"""CDK entry point: `-c stage=NAME` (default dev) picks the stage to synthesize.

The only place the app reads the environment (and the clock): CDK_DEFAULT_ACCOUNT
is dev's fallback account, dev's fallback region follows the region rule of
`stacks/stage/region.py`, the same one every command-line tool applies, and today's
date tells whether a pinned image has left its patch window (a warning).

After synthesis the templates are checked against SageMaker's rules
(`stacks/rulebook`): a template that breaks one fails synth, so it never
reaches CloudFormation.
"""

from __future__ import annotations

import datetime as dt
import os
import sys

import aws_cdk as cdk

from stacks.compose import add_stage
from stacks.stage.region import environment_region
from stacks.stage.schema import ConfigError


def main() -> int:
    app = cdk.App()
    try:
        stage = add_stage(
            app,
            app.node.try_get_context("stage") or "dev",
            default_account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            default_region=environment_region(os.environ),
            today=dt.date.today(),
        )
    except ConfigError as error:
        # One line, and nothing synthesized.
        print(f"Configuration error: {error}", file=sys.stderr)
        return 1
    violations = stage.rule_violations(app.synth())
    for violation in violations:
        print(f"Template breaks a SageMaker rule: {violation}", file=sys.stderr)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
