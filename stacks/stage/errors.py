"""Turning pydantic's report on a stage's raw settings into the one-line `ConfigError`.

The settings models (`settings.py`) say what is allowed: a field's description
is the "expected ..." text, or its type and bounds are. This module owns the
line's shape: the key path from `stages.<name>`, the bad value, what is allowed.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from stacks.stage.schema import ConfigError


class Refused(ValueError):
    """A settings validator's verdict: the text after the key path, the key below the
    validated object (`at`) when the verdict is about one of its fields."""

    def __init__(self, message: str, at: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.at = at


def config_error(
    error: ValidationError, model: type[BaseModel], raw: Any, where: str, renamed: Mapping[str, str] | None = None
) -> ConfigError:
    """The first problem pydantic found in `raw` (validated as `model`), as one line.

    `where` is the key path of `raw`; `renamed` names a top-level key by where its
    value came from instead (the command line's `-c artifact`).
    """

    def path(loc: tuple[int | str, ...]) -> str:
        if loc and renamed and loc[0] in renamed:
            return ".".join([renamed[str(loc[0])], *map(str, loc[1:])])
        return ".".join([where, *map(str, loc)])

    detail = error.errors()[0]
    loc = tuple(detail["loc"])
    refused = detail.get("ctx", {}).get("error")
    if isinstance(refused, Refused):
        return ConfigError(f"{path(loc + refused.at)}: {refused.message}")
    if detail["type"] == "extra_forbidden":
        parent = _bare(_target(model, loc[:-1])[1])
        return ConfigError(f"{path(loc)}: unknown key; allowed: {', '.join(sorted(parent.model_fields))}")
    if loc and loc[-1] == "[key]":
        _, key_type = _target(model, (*loc[:-2], "[key]"))
        return ConfigError(f"{path(loc[:-2])}: key {loc[-2]!r} is not allowed; {_expected(key_type, None)}")
    # A list is judged whole: its key, its value and what the list must hold.
    if any(isinstance(part, int) for part in loc):
        loc = loc[: next(i for i, part in enumerate(loc) if isinstance(part, int))]
    expected = _expected(*reversed(_target(model, loc)))
    if detail["type"] == "missing":
        return ConfigError(f"{path(loc)}: missing; {expected}")
    return ConfigError(f"{path(loc)}: {_value_at(raw, loc)!r} is not allowed; {expected}")


def _target(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[FieldInfo | None, Any]:
    """The model field at `loc` (None below a dict or list) and the type pydantic validated there."""
    field: FieldInfo | None = None
    current: Any = model
    for part in loc:
        bare = _bare(current)
        if isinstance(bare, type) and issubclass(bare, BaseModel):
            field = bare.model_fields[str(part)]
            current = field.annotation
        else:  # a dict's key or value, a list's item
            field = None
            current = get_args(bare)[0 if part == "[key]" else -1]
    return field, current


def _expected(annotation: Any, field: FieldInfo | None) -> str:
    """What a field allows, in words: its description, else what its type and bounds say."""
    infos = [field] if field else []
    while True:  # unwrap Annotated and an optional key's None, keeping each Field(...) met
        if get_origin(annotation) is Annotated:
            infos += [meta for meta in get_args(annotation)[1:] if isinstance(meta, FieldInfo)]
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, types.UnionType):
            annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        else:
            break
    description = next((info.description for info in infos if info.description), None)
    if description:
        return description
    if get_origin(annotation) is Literal:
        return f"allowed: {', '.join(map(str, get_args(annotation)))}"
    if annotation is bool:
        return "allowed: true, false"
    if annotation is int:
        metadata = [meta for info in infos for meta in info.metadata]
        low = next(meta.ge for meta in metadata if isinstance(meta, annotated_types.Ge))
        high = next(meta.le for meta in metadata if isinstance(meta, annotated_types.Le))
        return f"expected a whole number from {low} to {high}"
    return "expected an object"


def _bare(annotation: Any) -> Any:
    """The type under Annotated and an optional key's None."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, types.UnionType):
            annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        else:
            return annotation


def _value_at(raw: Any, loc: tuple[int | str, ...]) -> Any:
    for part in loc:
        raw = raw.get(part) if isinstance(raw, Mapping) else None
    return raw
