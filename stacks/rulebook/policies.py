"""Proving from a template's policy documents that a principal may do something.

Fail closed: only an Allow that names the action, on an accepted resource, under
conditions the caller accepts, with no Deny that could apply, proves a grant.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

CLOUDWATCH = "cloudwatch.amazonaws.com"
# Placeholders such as {AWS::AccountId} hold colons of their own.
ALARM_ARN = re.compile(
    r"^arn:[^:]+:cloudwatch:(?P<region>\{AWS::Region\}|[^:]+):"
    r"(?P<account>\{AWS::AccountId\}|[^:]+):alarm:(?P<name>.+)$"
)
# The one Deny the project's policies carry that a service's own request never meets.
_TLS_ONLY = {"Bool": {"aws:SecureTransport": "false"}}


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str) -> bool:
    return any(isinstance(p, str) and fnmatch.fnmatchcase(value.lower(), p.lower()) for p in _listed(patterns))


def _applies_to(statement: dict, service: str | None) -> bool:
    """Whether the statement's principal covers `service` (None: an identity policy)."""
    if service is None:
        return "Principal" not in statement
    principal = statement.get("Principal")
    return principal == "*" or (
        isinstance(principal, dict)
        and (service in _listed(principal.get("Service", [])) or "*" in _listed(principal.get("AWS", [])))
    )


def proves(
    statements: list[dict], service: str | None, action: str, resource_ok: Any, allowed_conditions: tuple[dict, ...]
) -> bool:
    """True only when the statements certainly let `service` (or the role) do
    `action`: an Allow naming it, on a resource `resource_ok` accepts, whose
    conditions are all among `allowed_conditions` (operator -> key -> predicate),
    and no Deny that could apply other than TLS-only. Anything else is not
    proved: the gate fails closed."""

    def conditions_hold(condition: dict) -> bool:
        for operator, keys in condition.items():
            for key, value in keys.items():
                checks = [c[operator][key] for c in allowed_conditions if key in c.get(operator, {})]
                if not checks or not checks[0](value):
                    return False
        return True

    allowed = False
    for statement in statements:
        if not _applies_to(statement, service) or not _matches(statement.get("Action"), action):
            continue
        if statement.get("Effect") == "Deny" and statement.get("Condition") != _TLS_ONLY:
            return False
        if statement.get("Effect") == "Allow" and any(
            r == "*" or resource_ok(r) for r in _listed(statement.get("Resource", "*"))
        ):
            allowed = allowed or conditions_hold(statement.get("Condition", {}))
    return allowed
