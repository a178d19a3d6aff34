"""What CloudFormation hands a custom resource: the template's properties with
their intrinsics resolved (here) and every scalar turned into a string (the
template check's `as_sent_to_custom_resource`).

The rehearsal uses it to work out, from the synthesized template alone, the
training job the packaging handler must have started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stacks.rulebook.templates import as_sent_to_custom_resource

__all__ = ["as_sent_to_custom_resource", "resolve"]


def resolve(value: Any, exports: Mapping[str, str], pseudo: Mapping[str, str]) -> Any:
    """Resolve Fn::ImportValue, Fn::Join, Fn::Sub and pseudo-parameter Refs."""
    if isinstance(value, list):
        return [resolve(v, exports, pseudo) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::ImportValue" in value:
        return exports[value["Fn::ImportValue"]]
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p, exports, pseudo)) for p in parts)
    if "Fn::Sub" in value:
        text = value["Fn::Sub"]
        for name, resolved in pseudo.items():
            text = text.replace("${" + name + "}", resolved)
        return text
    if "Ref" in value and value["Ref"] in pseudo:
        return pseudo[value["Ref"]]
    return {k: resolve(v, exports, pseudo) for k, v in value.items()}
