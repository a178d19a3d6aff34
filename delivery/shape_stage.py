"""What the shape checks of a stored serving template (`serving_shape.py`,
`policy_shape.py`) compare it with: the stage it must serve (`Stage`: this checkout's
config of it, its account and region, the record's artifact), and the refusal of a
value that has not the form the stacks give it (`only`, `items`, `whole`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from delivery.intrinsics import Reference, refuse, shown
from stacks.stage.images import ContainerImage
from stacks.stage.names import StageNames, served_objects
from stacks.stage.schema import InstanceServing, StageConfig


@dataclass(frozen=True)
class Stage:
    """What a stored template must serve and where: `config` this checkout's config of
    the stage, `artifact_key` the record's copy in the stage's bucket, `kinds` the
    template's resources by logical id."""

    config: StageConfig
    account: str
    region: str
    partition: str
    image: ContainerImage
    artifact_key: str
    kinds: dict[str, str]

    @property
    def names(self) -> StageNames:
        return self.config.names

    @property
    def artifact_pattern(self) -> str:
        """The objects of the artifact as the Model's role lists them: a prefix is
        every object under it, an archive the one key (`stacks/serving/model_role.py`)."""
        return f"{self.artifact_key}*" if self.artifact_key.endswith("/") else self.artifact_key

    @property
    def artifact_objects(self) -> set[str]:
        """What the Model's role may be granted s3:GetObject on: an archive's key; of a
        prefix, the packaging job's layout of it for the configured model
        (`stacks.stage.names.served_objects`), or every object under it as templates
        stored before that narrowing grant it."""
        if not self.artifact_key.endswith("/"):
            return {self.artifact_key}
        model = self.config.model
        return {self.artifact_pattern, *served_objects(self.artifact_key, model.name, model.version)}

    @property
    def instances(self) -> InstanceServing | None:
        """The config's instances; None when it serves the stage serverless."""
        serving = self.config.serving
        return serving if isinstance(serving, InstanceServing) else None

    @property
    def most_instances(self) -> int:
        """The most instances the config lets the stage run: its count, or its
        autoscaling maximum (none when serverless)."""
        instances = self.instances
        if instances is None:
            return 0
        scaling = instances.autoscaling
        return max(instances.instance_count, scaling.max_instances if scaling else 0)

    def arn(self, service: str, resource: str) -> str:
        """An ARN of the stage's account and region, as the stacks format it."""
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def require_own(self, value: Any, kind: str, attribute: str | None, what: str) -> None:
        """Refuse `value` unless it is `Fn::GetAtt` `attribute` (None: `Ref`) of a `kind` of the template."""
        if not (
            isinstance(value, Reference) and value.attribute == attribute and self.kinds.get(value.resource) == kind
        ):
            refuse(f"{what} {shown(str(value))}, which is no {kind} its own stack defines")


def only(mapping: Any, allowed: set[str] | frozenset[str], where: str) -> dict[str, Any]:
    """`mapping`, refused unless it is an object with no keys but `allowed`."""
    if not isinstance(mapping, dict):
        refuse(f"{where} is {shown(repr(mapping))}, not an object")
    extra = sorted(set(mapping) - allowed)
    if extra:
        refuse(f"{where} has {extra}, which no serving stack's has")
    return mapping


def items(value: Any, where: str) -> list[Any]:
    """`value`, refused unless it is a list, as the stacks write every list property."""
    if not isinstance(value, list):
        refuse(f"{where} is {shown(repr(value))}, not a list")
    return value


def whole(value: Any, where: str, at_most: int) -> int:
    """`value`, refused unless it is a whole number from 1 to `at_most`."""
    if type(value) is not int or not 1 <= value <= at_most:
        refuse(f"{where} is {shown(repr(value))}, not a whole number from 1 to {at_most}")
    return value


def listed(value: Any) -> list[Any]:
    """A policy element that is one value or a list of them, as a list (IAM User Guide,
    "IAM JSON policy element reference": Action, Resource and condition values)."""
    return value if isinstance(value, list) else [value]
