"""The region rule: where a stage's region comes from.

A stage's region is `stages.<stage>.region` in cdk.json. Only dev may leave it
null; it then takes the region in the CDK CLI's own order (aws-cdk's
`AwsCliCompatible.region()`): AWS_REGION, AMAZON_REGION, AWS_DEFAULT_REGION,
AMAZON_DEFAULT_REGION, the `region` of the active profile (AWS_PROFILE, else
AWS_DEFAULT_PROFILE, else `default`) in the credentials file and then the
config file, then the same for the `default` profile, else us-east-1. The
CLI's last step, EC2 instance metadata, is not followed: on an instance
without a configured region, set one. The CDK app and every command-line tool
resolve it here (and the tools take credentials from that same profile), so
`cdk deploy` and `make smoke` never look in two regions.

Plain functions over an environment mapping: nothing here calls AWS.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping

# The one stage that may leave its account and region null, to take them from the
# environment; every other stage names them, so a promotion never lands elsewhere.
FALLBACK_STAGE = "dev"
# What the CDK CLI falls back to when nothing names a region.
CDK_CLI_DEFAULT_REGION = "us-east-1"
_REGION_VARIABLES = ("AWS_REGION", "AMAZON_REGION", "AWS_DEFAULT_REGION", "AMAZON_DEFAULT_REGION")


def environment_region(environ: Mapping[str, str]) -> str:
    """The region the CDK CLI would use with this environment."""
    for name in _REGION_VARIABLES:
        if environ.get(name):
            return environ[name]
    return profile_region(environ) or CDK_CLI_DEFAULT_REGION


def active_profile(environ: Mapping[str, str]) -> str | None:
    """The profile the CDK CLI uses: AWS_PROFILE, else AWS_DEFAULT_PROFILE."""
    return environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or None


def profile_region(environ: Mapping[str, str]) -> str | None:
    """`region` of the active profile, then of `default`: the credentials file, then the config file.

    A profile that the files lack gives None, as it does for the CDK CLI: a
    stale AWS_PROFILE must not stop offline work (synth, the rehearsal); the
    tools that need credentials report it when they ask for them.
    """
    home = environ.get("HOME")
    credentials = _ini(
        environ.get("AWS_SHARED_CREDENTIALS_FILE") or (home and os.path.join(home, ".aws", "credentials"))
    )
    config = _ini(environ.get("AWS_CONFIG_FILE") or (home and os.path.join(home, ".aws", "config")))
    for profile in dict.fromkeys((active_profile(environ) or "default", "default")):
        # The credentials file names sections bare; the config file says `profile NAME`, but `default`.
        for parser, section in (
            (credentials, profile),
            (config, "default" if profile == "default" else f"profile {profile}"),
        ):
            if parser.has_option(section, "region") and parser.get(section, "region").strip():
                return parser.get(section, "region").strip()
    return None


def _ini(path: str | None) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    if path:
        try:
            parser.read(path)
        except configparser.Error:
            pass  # a broken file is reported by the tools that need it, in one line
    return parser
