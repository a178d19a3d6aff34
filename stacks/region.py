"""The region rule: where a stage's region comes from.

A stage's region is `stages.<stage>.region` in cdk.json. Only dev may leave it
null; it then takes the region the CDK CLI itself would pick, in the CLI's own
order: AWS_REGION, AMAZON_REGION, AWS_DEFAULT_REGION, AMAZON_DEFAULT_REGION,
the `region` of the active profile (AWS_PROFILE, else `default`) and then of
the default profile in the AWS config file, else us-east-1 (aws-cdk's
`AwsCliCompatible.region()`). The CDK app and every command-line tool resolve
it here, so `cdk deploy` and `make smoke` never look in two regions.

Plain functions over an environment mapping: nothing here calls AWS.
"""

from __future__ import annotations

import configparser
import os
from typing import Mapping

# What the CDK CLI falls back to when nothing names a region.
CDK_CLI_DEFAULT_REGION = "us-east-1"
_REGION_VARIABLES = ("AWS_REGION", "AMAZON_REGION", "AWS_DEFAULT_REGION", "AMAZON_DEFAULT_REGION")


def environment_region(environ: Mapping[str, str]) -> str:
    """The region the CDK CLI would use with this environment."""
    for name in _REGION_VARIABLES:
        if environ.get(name):
            return environ[name]
    return profile_region(environ) or CDK_CLI_DEFAULT_REGION


def profile_region(environ: Mapping[str, str]) -> str | None:
    """`region` of the active profile, then of `default`, in the AWS config file.

    A profile that the file lacks gives None, as it does for the CDK CLI: a
    stale AWS_PROFILE must not stop offline work (synth, the rehearsal); the
    tools that need credentials report it when they ask for them.
    """
    profile = environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"
    path = environ.get("AWS_CONFIG_FILE") or os.path.join(environ.get("HOME", ""), ".aws", "config")
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return None
    for section in (f"profile {profile}", profile, "default"):
        if parser.has_option(section, "region"):
            return parser.get(section, "region").strip() or None
    return None
