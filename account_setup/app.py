"""CDK entry point of the account setup: one stage's CI access, deployed once into its account.

    npx cdk deploy --app ".venv/bin/python -m account_setup.app" -o cdk.out/ci-access \\
        -c stage=staging -c github_repo=OWNER/REPO [-c source_account=ID] [-c next_account=ID]

The context keys are `account_setup/settings.py`'s. Like `app.py`, the only
reader of the environment: CDK_DEFAULT_ACCOUNT is dev's fallback account, and
dev's fallback region follows the region rule of `stacks/stage/region.py`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

import aws_cdk as cdk

from account_setup.settings import load_access_settings
from account_setup.stack import CiAccessStack, add_ci_access
from stacks.stage.region import environment_region
from stacks.stage.schema import ConfigError

_KEYS = (
    "project",
    "stages",
    "stage",
    "github_repo",
    "source_account",
    "next_account",
    "oidc_provider_arn",
    "bootstrap_qualifier",
)


def build(app: cdk.App, environ: Mapping[str, str]) -> CiAccessStack:
    """Validate the app's context and add the stage's CI access stack.

    Raises `ConfigError` before any construct is created.
    """
    context = {key: app.node.try_get_context(key) for key in _KEYS}
    settings = load_access_settings(
        {key: value for key, value in context.items() if value is not None},
        default_account=environ.get("CDK_DEFAULT_ACCOUNT"),
        default_region=environment_region(environ),
    )
    return add_ci_access(app, settings)


def main() -> int:
    app = cdk.App()
    try:
        build(app, os.environ)
    except ConfigError as error:
        # One line, and nothing synthesized.
        print(f"Configuration error: {error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
