"""The constrained value types cdk.json's stage settings are made of.

Each type carries its pattern or bounds and a description that is both the
"expected ..." text of its error (`errors.py`) and its hover text in an editor
(`json_schema.py`); the settings models (`settings.py`, `stage_settings.py`)
are built from them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from stacks.rulebook import limits
from stacks.stage.errors import Refused
from stacks.stage.schema import rule_broken

T = TypeVar("T")


def _not_null(value: T) -> T:
    if value is None:
        raise PydanticCustomError("not_null", "null is not allowed")
    return value


def _no_null_in_schema(schema: dict[str, Any]) -> None:
    schema.pop("default", None)
    schema.update(next(option for option in schema.pop("anyOf") if option != {"type": "null"}))


# An optional key is left out, never null: a null that meant "the default" would hide
# a mistake. (`T | None`, not a union with a schema-less None: pydantic reports a
# nullable field's errors at its key, without a union member's name.)
Omittable = Annotated[T | None, BeforeValidator(_not_null), Field(json_schema_extra=_no_null_in_schema)]


def whole(low: int, high: int, description: str | None = None) -> Any:
    """A whole number from `low` to `high`; `description`, when given, is its error's "allowed" text."""
    return Field(strict=True, ge=low, le=high, description=description)


def text(pattern: str, description: str) -> Any:
    """A string matching `pattern`; `description` says what is allowed, in words."""
    # Strict here too: a TypeAdapter of the type (config.py) has no model config.
    # pydantic matches with Rust's regex, whose `$` is the end of the text: no trailing newline passes.
    return Field(strict=True, pattern=pattern, description=description)


# Matched whole: stray whitespace or a line break would reach the job's hyperparameters.
NonEmpty = Annotated[
    str, text(r"^\S(?:[^\r\n]*\S)?$", "expected a non-empty string without line breaks or leading or trailing spaces")
]


def _offered(shape: str, rule_id: str) -> AfterValidator:
    """Refuses an instance type SageMaker does not offer for the purpose `shape` lists."""

    def check(value: str) -> str:
        problem = limits.unoffered(value, shape)
        if problem:
            raise Refused(rule_broken(rule_id, value, problem))
        return value

    return AfterValidator(check)


# The pattern says what an instance type looks like; the enum, which one SageMaker offers.
EndpointInstanceType = Annotated[
    str,
    text(
        limits.INSTANCE_TYPE.pattern,
        "expected an instance type SageMaker offers for real-time endpoints, such as 'ml.m5.large' "
        "(it starts with 'ml.')",
    ),
    _offered(limits.ENDPOINT_INSTANCE_TYPES, "endpoint-instance-type"),
]
TrainingInstanceType = Annotated[
    str,
    text(
        limits.INSTANCE_TYPE.pattern,
        "expected an instance type SageMaker offers for training jobs, such as 'ml.m5.xlarge' (it starts with 'ml.')",
    ),
    _offered(limits.TRAINING_INSTANCE_TYPES, "training-instance-type"),
]
Project = Annotated[
    str,
    text(
        r"^[a-zA-Z](?:-*[a-zA-Z0-9])*$",
        # It also starts stack names, which must begin with a letter.
        "start with a letter, then letters, digits and hyphens (no trailing hyphen)",
    ),
]
# A stage names stacks, exports, GitHub environments and the endpoint.
StageName = Annotated[
    str,
    text(
        r"^[a-z](?:-?[a-z0-9]){0,19}$",
        "start with a lowercase letter, then lowercase letters, digits and single hyphens, at most 20 "
        "characters (it names stacks, exports, GitHub environments and the endpoint)",
    ),
]


def hyperparameter(value: str) -> str:
    """A value the packaging job receives as a hyperparameter (JSON-encoded once)."""
    if len(json.dumps(value)) > limits.HYPERPARAMETER_MAX:
        raise Refused(rule_broken("hyperparameter-length", value[:40] + "...", f"{len(value)} characters"))
    return value
