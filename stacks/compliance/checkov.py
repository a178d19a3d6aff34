"""checkov skips, written into each resource's CloudFormation Metadata.

checkov reads `Metadata.checkov.skip` beside the resource it checks; each skip
here carries the reason the check does not apply to that resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from aws_cdk import CfnResource
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


def skip(resource: IConstruct, reasons: Mapping[str, str]) -> None:
    """Add checkov skips (check id -> reason) to `resource` or its default child."""
    cfn = resource if isinstance(resource, CfnResource) else cast(CfnResource, resource.node.default_child)
    current = cfn.get_metadata("checkov") or {"skip": []}
    known = {entry["id"] for entry in current["skip"]}
    current["skip"] += [{"id": i, "comment": r} for i, r in reasons.items() if i not in known]
    cfn.add_metadata("checkov", current)
