"""Reading one raw setting: its type, its range, its allowed values; errors name the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stacks.stage.schema import ConfigError


def no_unknown_keys(raw: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; allowed: {', '.join(sorted(allowed))}")


def mapping(raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = raw.get(key)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {value!r} is not allowed; expected an object")
    return value


def string(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {value!r} is not allowed; expected a non-empty string")
    return value


def integer(raw: Mapping[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = raw.get(key)
    # bool is an int subclass in Python; `true` is never a count.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}: {value!r} is not allowed; expected a whole number from {low} to {high}")
    return value


def choice(raw: Mapping[str, Any], key: str, where: str, allowed: tuple[str, ...]) -> str:
    value = raw.get(key)
    if value not in allowed:
        raise ConfigError(f"{where}.{key}: {value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value
