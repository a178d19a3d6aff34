"""checkov skips, written into each resource's CloudFormation Metadata.

checkov reads `Metadata.checkov.skip` beside the resource it checks; each skip
here carries the reason the check does not apply to that resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import jsii
from aws_cdk import CfnResource, IAspect
from constructs import IConstruct

# Lambdas that CloudFormation (directly or through CDK's Provider framework) runs
# during a deploy.
DEPLOY_TIME_FUNCTION = {
    "CKV_AWS_115": "Runs only while CloudFormation deploys this stack; reserving concurrency "
    "would only take it away from the account.",
    "CKV_AWS_116": "Its caller, CloudFormation or CDK's Provider framework, gets its result or "
    "failure and fails the deployment visibly; a dead-letter queue would hold nothing to act on.",
    "CKV_AWS_117": "Calls only AWS APIs; a VPC would need NAT or endpoints and protect nothing here.",
    "CKV_AWS_173": "Its environment holds resource names and numbers, no secrets; Lambda encrypts "
    "it at rest with an AWS-managed key.",
}
HANDLER_LOGS = {
    "CKV_AWS_158": "Holds handler progress messages, no model data or secrets; CloudWatch Logs "
    "encrypts it at rest by default.",
}


@jsii.implements(IAspect)
class LambdasAndTheirLogs:
    """The one place every Lambda function and log group of a stack gets its skips,
    CDK's own (Provider framework, AwsCustomResource, auto-delete) included: all of
    them run only for deploys or on a schedule, and log only progress messages."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource) and node.cfn_resource_type == "AWS::Lambda::Function":
            skip(node, DEPLOY_TIME_FUNCTION)
        elif isinstance(node, CfnResource) and node.cfn_resource_type == "AWS::Logs::LogGroup":
            skip(node, HANDLER_LOGS)


def skip(resource: IConstruct, reasons: Mapping[str, str]) -> None:
    """Add checkov skips (check id -> reason) to `resource` or its default child."""
    cfn = resource if isinstance(resource, CfnResource) else cast(CfnResource, resource.node.default_child)
    current = cfn.get_metadata("checkov") or {"skip": []}
    known = {entry["id"] for entry in current["skip"]}
    current["skip"] += [{"id": i, "comment": r} for i, r in reasons.items() if i not in known]
    cfn.add_metadata("checkov", current)
