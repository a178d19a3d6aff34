"""One stage's raw settings (`stages.<name>` of cdk.json) and its production settings.

The parts (model, packaging, serving) are `settings.py`'s; this module adds
alarms, the deployment policy, data capture, the cost guard, tags, promoters
and the stage object itself. What joins two parts is `checks.py`'s.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from stacks.stage.errors import Refused
from stacks.stage.fields import Omittable, text, whole
from stacks.stage.schema import ARTIFACTS_PREFIX, rule_broken
from stacks.stage.settings import (
    INSTANCE_COUNT,
    ModelSettings,
    PackagingSettings,
    ServingSettings,
    Settings,
)


class AlarmsSettings(Settings):
    """`alarms`: the 5XX and model-latency alarms an update rolls back on."""

    emails: list[Annotated[str, text(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "an e-mail address")]] = Field(
        default=[], description="expected a list of e-mail addresses"
    )
    max_model_latency_ms: Annotated[int, whole(1, 600_000)]
    max_5xx_errors: Annotated[int, whole(0, 1_000_000)]


class DeploymentSettings(Settings):
    """`deployment`: blue/green, all at once or in canary/linear steps of whole instances."""

    strategy: Literal["all_at_once", "canary", "linear"]
    step_instances: Omittable[Annotated[int, whole(*INSTANCE_COUNT)]] = None
    wait_minutes: Annotated[int, whole(0, 60)]

    @model_validator(mode="after")
    def _steps_only_when_shifting(self) -> Self:
        if self.strategy == "all_at_once" and self.step_instances is not None:
            raise Refused("not allowed with strategy 'all_at_once'", at=("step_instances",))
        if self.strategy != "all_at_once" and self.step_instances is None:
            raise Refused(
                f"missing; strategy {self.strategy!r} shifts traffic in steps of whole instances",
                at=("step_instances",),
            )
        return self


class DataCaptureSettings(Settings):
    """`data_capture`: a sample of requests and responses to the stage bucket."""

    sampling_percent: Annotated[int, whole(1, 100)]


class CostGuardSettings(Settings):
    """`cost_guard`: tear down an idle instance-backed endpoint."""

    idle_hours: Annotated[int, whole(1, 24 * 14)]


_BUILT_IN_TAGS = ("project", "stage")
# AWS allows 50 tags per resource, and every resource also carries 'project' and 'stage'.
USER_TAGS_MAX = 50 - len(_BUILT_IN_TAGS)
_TAG_KEY_ALLOWED = "1-128 letters, digits, spaces or _ . : / = + - @, not starting with 'aws:'"
# Lengths apart from the patterns: a repeated Unicode \w would compile to a huge Rust regex.
TagKey = Annotated[str, text(r"^[\w .:/=+\-@]+$", _TAG_KEY_ALLOWED), Field(max_length=128)]
TagValue = Annotated[
    str,
    text(r"^[\w .:/=+\-@]*$", "a string of up to 256 letters, digits, spaces or _ . : / = + - @"),
    Field(max_length=256),
]
# ASCII digits only: \d also takes other scripts' digits.
Account = Annotated[str, text(r"^[0-9]{12}$", "expected a 12-digit account id")]
# An IAM role or user that may assume the promotion role (ArnLike patterns allowed).
PrincipalArn = Annotated[
    str, text(r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9_+=,.@/*-]+$", "an IAM role or user ARN")
]


# What a Model serves: a .tar.gz through ModelDataUrl, or a prefix through ModelDataSource.
_ARTIFACT_ENDINGS = (".tar.gz", "/")


class StageSettings(Settings):
    """A stage: where it deploys, what it serves and how; exactly one of packaging or pinned_artifact."""

    account: Account | None = None
    region: str | None = Field(
        default=None,
        description="expected a region where the pinned TF Serving image exists; dev may leave it null",
    )
    model: ModelSettings
    serving: ServingSettings
    packaging: Omittable[PackagingSettings] = None
    pinned_artifact: Omittable[
        Annotated[
            str,
            text(
                rf"^{ARTIFACTS_PREFIX}[\s\S]*({'|'.join(map(re.escape, _ARTIFACT_ENDINGS))})$",
                f"expected a key in the stage bucket under '{ARTIFACTS_PREFIX}' ending in '.tar.gz' "
                "(compressed) or '/' (uncompressed prefix)",
            ),
        ]
    ] = None
    removal_policy: Literal["destroy", "retain"]
    tags: dict[TagKey, TagValue] = Field(default={}, json_schema_extra={"maxProperties": USER_TAGS_MAX})
    promoters: list[PrincipalArn] = Field(
        default=[],
        description="expected a list of IAM role or user ARNs (arn:aws:iam::ACCOUNT:role/NAME), the principals "
        "that run promotions to this stage",
    )
    deployment: Omittable[DeploymentSettings] = None
    alarms: Omittable[AlarmsSettings] = None
    data_capture: Omittable[DataCaptureSettings] = None
    cost_guard: Omittable[CostGuardSettings] = None

    @field_validator("pinned_artifact", mode="before")
    @classmethod
    def _archive_or_prefix(cls, value: object) -> object:
        # Ahead of the pattern, so that a key under artifacts/ in another form (a .zip)
        # names the rule it breaks; anything else is the pattern's to refuse.
        if isinstance(value, str) and value.startswith(ARTIFACTS_PREFIX) and not value.endswith(_ARTIFACT_ENDINGS):
            raise Refused(
                rule_broken(
                    "model-data-url-tar-gz",
                    value,
                    "expected a '.tar.gz' archive or an uncompressed prefix ending in '/'",
                )
            )
        return value

    @field_validator("tags")
    @classmethod
    def _user_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > USER_TAGS_MAX:
            raise Refused(
                f"{len(tags)} tags are not allowed; at most {USER_TAGS_MAX} (AWS allows 50 per resource, "
                "and every resource also carries 'project' and 'stage')"
            )
        for key in tags:
            if key in _BUILT_IN_TAGS:
                raise Refused(f"key {key!r} is not allowed; the project sets it on every resource")
            if key.lower().startswith("aws:"):
                raise Refused(f"key {key!r} is not allowed; {_TAG_KEY_ALLOWED}")
        return tags

    @model_validator(mode="after")
    def _one_artifact_source(self) -> Self:
        if (self.packaging is None) == (self.pinned_artifact is None):
            raise Refused(
                "set exactly one of 'packaging' (run the packaging job on deploy) or "
                "'pinned_artifact' (serve an artifact already in the stage bucket)"
            )
        return self
