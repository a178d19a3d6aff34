"""A deployed stage as the command-line tools reach it.

Its config comes from cdk.json (region by the region rule, `stacks/stage/region.py`),
its AWS session is in that region (optionally through a role in another
account), and its serving stack's outputs are read with one-line errors when
the stage is not deployed or an output is missing.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from stacks.stage.config import load_from_cdk_json
from stacks.stage.names import StageNames
from stacks.stage.region import FALLBACK_STAGE, active_profile
from stacks.stage.schema import StageConfig
from tools.cli import UserError

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Throttles and 5xx answers are retried (botocore's standard mode, 10 retries after
# the first call; boto3 guide, "Retries") before a tool gives up. Every client the
# delivery tools create carries it: sts included, whose throttling fails a promotion
# as surely as any other.
RETRIES = Config(retries={"mode": "standard", "max_attempts": 10})


@dataclass
class DeployedStage:
    config: StageConfig
    session: Any
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=RETRIES)
        return self._clients[service]

    def as_role(self, role_arn: str, session_name: str) -> DeployedStage:
        """The same stage reached as `role_arn` (assumed with this stage's credentials)."""
        return DeployedStage(self.config, _assumed(self.session, role_arn, session_name))

    def serving_outputs(self, *required: str) -> dict[str, str]:
        """The serving stack's outputs, which must include `required`."""
        return serving_outputs(self.client("cloudformation"), self.config.names, *required)


def serving_outputs(cloudformation, names: StageNames, *required: str) -> dict[str, str]:
    """A stage's serving stack's outputs; a stack that is not there, or lacks a `required`
    output, is one line saying so."""
    region, stack = cloudformation.meta.region_name, names.serving_stack
    try:
        (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationError" and "does not exist" in str(error):
            where = (
                f"{FALLBACK_STAGE}'s region, when cdk.json leaves it null, comes from AWS_REGION, "
                "AWS_DEFAULT_REGION or your profile, else us-east-1"
                if names.stage == FALLBACK_STAGE
                else "the stage's region is the one cdk.json names"
            )
            raise UserError(
                f"Stack {stack} does not exist in {region}: that stage is not deployed there "
                f"(`make deploy STAGE=...`; {where})."
            ) from error
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    missing = [key for key in required if key not in outputs]
    if missing:
        raise UserError(
            f"Stack {stack} ({region}, {description['StackStatus']}) has no "
            f"{', '.join(missing)} output: redeploy it with this version of the project."
        )
    return outputs


def deployed_stage(stage: str, environ: Mapping[str, str] | None = None, role_arn: str | None = None) -> DeployedStage:
    """The stage of cdk.json, reached with the environment's credentials (or `role_arn`)."""
    environ = os.environ if environ is None else environ
    config = load_from_cdk_json(ROOT / "cdk.json", stage, environ)
    # The profile the CDK CLI and the region rule use, whichever of the two variables names it.
    session = boto3.session.Session(region_name=config.region, profile_name=active_profile(environ))
    if role_arn:
        session = _assumed(session, role_arn, f"tfhub-{stage}")
    if config.account and not role_arn:
        account = session.client("sts", config=RETRIES).get_caller_identity()["Account"]
        if account != config.account:
            raise UserError(
                f"Stage {stage} lives in account {config.account}, but the credentials in use are "
                f"account {account}'s: use that account's profile or role."
            )
    return DeployedStage(config, session)


def _assumed(session, role_arn: str, session_name: str):
    """A session in `session`'s region as `role_arn`; refusal is one line naming the role."""
    try:
        credentials = session.client("sts", config=RETRIES).assume_role(RoleArn=role_arn, RoleSessionName=session_name)[
            "Credentials"
        ]
    except ClientError as error:
        if error.response["Error"]["Code"] != "AccessDenied":
            raise
        raise UserError(
            f"Cannot assume {role_arn}: the credentials in use may not (its trust policy, or "
            "your IAM policy lacks sts:AssumeRole on it; a stage's promoters are set in cdk.json)."
        ) from error
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=session.region_name,
    )
