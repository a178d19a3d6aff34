"""`make deploy`, `make diff` and `make destroy`'s first step: the stage's credentials
resolve, and may reach the stage's stacks the way the CDK CLI will.

Without usable credentials the CDK CLI ends in "Unable to resolve AWS account to
use", which names neither the cause nor the fix; with credentials that may not
touch the stacks it ends in several lines of its own. This asks STS who the
credentials are, as the CLI does to find the account, then tries the CLI's
first step with them (below), and ends an expected failure (no credentials, a
profile this machine lacks, an expired SSO session, another account's
credentials for a pinned stage, credentials the CLI could reach the stacks
with by no route) in tools/cli.py's one line and exit code 1, before the CLI
runs. `make synth` needs no credentials and does not run it.

How the pinned CLI reaches a stack (aws-cdk's `Deployments`): deploy and
destroy assume the bootstrap's deploy role; diff reads the deployed templates
with the lookup role, else the deploy role (`accessStackForLookupBestEffort`).
When the credentials cannot assume the role but belong to the stack's account,
the CLI goes on with them (`SdkProvider.forEnvironment`: "... but are for the
right account. Proceeding anyway."), and its first call on a stack is then
cloudformation:DescribeStacks. So the check passes when the credentials may
assume one of those roles, or may describe the stage's stacks themselves (a
stack that does not exist yet is fine), and refuses only credentials with
which the CLI would fail. It sees no further: credentials allowed to describe
a stack but not to change it still fail in the CLI's own words.
"""

from __future__ import annotations

import argparse
import sys

from botocore.exceptions import ClientError

from delivery.deployed import ROOT, DeployedStage, deployed_stage
from stacks.stage.config import read_context
from tools.cli import UserError, run

# The roles the CLI tries, in its order, for each make target.
ROLES = {"deploy": ("deploy",), "destroy": ("deploy",), "diff": ("lookup", "deploy")}
# The context key the CDK's DefaultStackSynthesizer reads for `cdk bootstrap --qualifier`,
# and its default (`DefaultStackSynthesizer.DEFAULT_QUALIFIER`).
QUALIFIER_CONTEXT = "@aws-cdk/core:bootstrapQualifier"
DEFAULT_QUALIFIER = "hnb659fds"


def caller(deployed: DeployedStage) -> dict:
    """Who the stage's credentials are (STS GetCallerIdentity)."""
    # The STS API reference's GetCallerIdentity: "No permissions are required"; only
    # credentials that cannot be used fail it.
    return deployed.client("sts").get_caller_identity()


def checked_stage(stage: str) -> DeployedStage:
    """The stage of cdk.json, reached with credentials that STS accepts."""
    deployed = deployed_stage(stage)
    caller(deployed)
    return deployed


def bootstrap_role_arn(kind: str, partition: str, account: str, region: str, qualifier: str) -> str:
    """A bootstrap role's ARN, as DefaultStackSynthesizer.DEFAULT_DEPLOY_ROLE_ARN
    (and DEFAULT_LOOKUP_ROLE_ARN) spell it."""
    return f"arn:{partition}:iam::{account}:role/cdk-{qualifier}-{kind}-role-{account}-{region}"


def check_access(deployed: DeployedStage, identity: dict, command: str) -> None:
    """Refuse, in one line, credentials (STS's `identity` of them) with which
    `cdk <command>` cannot reach the stage's stacks."""
    principal, account = identity["Arn"], identity["Account"]
    qualifier = read_context(ROOT / "cdk.json").get(QUALIFIER_CONTEXT, DEFAULT_QUALIFIER)
    roles = [
        bootstrap_role_arn(kind, principal.split(":")[1], account, deployed.config.region, qualifier)
        for kind in ROLES[command]
    ]
    for role in roles:
        try:
            deployed.client("sts").assume_role(RoleArn=role, RoleSessionName=f"check-{command}", DurationSeconds=900)
            return
        except ClientError as error:
            # The CLI goes on without the role after any refusal but an expired token,
            # which tools/cli.py explains.
            if error.response.get("Error", {}).get("Code") == "ExpiredToken":
                raise
    names = deployed.config.names
    for stack in (names.storage_stack, names.serving_stack):
        try:
            deployed.client("cloudformation").describe_stacks(StackName=stack)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "ValidationError" and "does not exist" in str(error):
                continue
            if code not in ("AccessDenied", "AccessDeniedException"):
                raise
            raise UserError(
                f"make {command} cannot reach stage {names.stage}'s stacks as {principal}: it can assume no "
                f"CDK bootstrap role (sts:AssumeRole on {' or '.join(roles)}; `npx cdk bootstrap "
                f"aws://{account}/{deployed.config.region}` creates them) and may not "
                f"cloudformation:DescribeStacks on {stack} itself."
            ) from error


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--command", choices=sorted(ROLES), required=True, help="the make target about to run")
    args = parser.parse_args(argv)
    deployed = deployed_stage(args.stage)
    check_access(deployed, caller(deployed), args.command)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
