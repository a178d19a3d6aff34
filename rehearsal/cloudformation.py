"""What CloudFormation hands a custom resource: the template's properties with
their intrinsics resolved and every scalar turned into a string.

The rehearsal uses it to work out, from the synthesized template alone, the
training job the packaging handler must have started.
"""

from __future__ import annotations

from typing import Any, Mapping


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


def as_sent_to_custom_resource(value: Any) -> Any:
    """CloudFormation passes every scalar property to a custom resource as a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return {k: as_sent_to_custom_resource(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_sent_to_custom_resource(v) for v in value]
    return value
