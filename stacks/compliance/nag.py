"""cdk-nag acknowledgments for wildcard resources, one finding at a time.

cdk-nag reports each wildcard resource of a policy as its own finding, named
by the resource as it renders it; acknowledging each by that name keeps the
gate closed for any wildcard added later.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import Construct


def acknowledge_wildcards(scope: Construct, reasons: Mapping[str, str]) -> None:
    """Acknowledge AwsSolutions-IAM5 for each resource (ARN or token) in `reasons`."""
    stack = Stack.of(scope)
    Validations.of(scope).acknowledge(
        *(
            Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{as_nag_prints(stack, resource)}]", reason=reason)
            for resource, reason in reasons.items()
        )
    )


def as_nag_prints(stack: Stack, value: str) -> str:
    """Render `value` as cdk-nag names it in a finding: <AWS::Param>, <LogicalId.Attr>,
    an import's export name."""
    resolved = stack.resolve(value)
    if isinstance(resolved, str):
        return resolved
    if "Fn::Join" in resolved:
        return "".join(_part(part) for part in resolved["Fn::Join"][1])
    return _part(resolved)


def _part(part: str | dict) -> str:
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return f"<{part['Ref']}>"
    if "Fn::ImportValue" in part:
        return part["Fn::ImportValue"]
    logical_id, attribute = part["Fn::GetAtt"]
    return f"<{logical_id}.{attribute}>"
