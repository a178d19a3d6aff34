"""What a stored serving template's values evaluate to, before any check reads them.

CloudFormation builds strings at deploy time from intrinsic functions (CloudFormation
User Guide, "Intrinsic function reference"): a check reading the literal pieces of
`{"Fn::Join": ["", ["arn:aws:iam::", "111111", "111111", ":root"]]}` sees no
account where CloudFormation deploys one. So every value is evaluated first, as
CloudFormation would, into strings the checks then read whole:

- `Ref` of a pseudo parameter (User Guide, "Pseudo parameters reference") is the
  stage's account, region, partition or URL suffix; `AWS::NoValue` (a value that
  vanishes at deploy time is not the one checked), other pseudo parameters and
  template parameters are refused;
- `Ref` and `Fn::GetAtt` of a resource of the template are a `Reference`, which the
  shape checks compare whole; inside a string (`Fn::Join`, `Fn::Sub`) only where the
  caller allows it (a dashboard, whose body CDK builds with its alarms' ARNs), as a marker;
- `Fn::ImportValue` of the stage's bucket exports is `BUCKET_NAME` or `BUCKET_ARN`,
  markers no literal may spell (a literal holding their NUL character is refused);
  any other import is refused;
- `Fn::Join`, `Fn::Sub` (with or without a variable map), `Fn::Select` and
  `Fn::Split` become the string or list they make;
- any other function (`Fn::If`, `Fn::Base64`, `Fn::FindInMap`, `Fn::Transform`, ...)
  is refused: no serving stack uses one.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NoReturn

from delivery.artifacts import PromotionError
from stacks.stage.names import StageNames

BUCKET_NAME = "\x00stage-bucket-name\x00"
BUCKET_ARN = "\x00stage-bucket-arn\x00"
_EMBEDDED = "\x00reference\x00"
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DIGITS = re.compile(r"[0-9]{1,9}")
# The most of a value a refusal quotes.
_LONGEST = 200


@dataclass(frozen=True)
class Reference:
    """`Ref` (attribute None) or `Fn::GetAtt` of the template's resource `resource`."""

    resource: str
    attribute: str | None = None


class Evaluator:
    """Evaluates the values of a stored template of the stage `names` in `account` and `region`."""

    def __init__(self, resources: Collection[str], names: StageNames, account: str, region: str) -> None:
        self.partition = (
            "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
        )
        self._pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
        }
        self._imports = {names.bucket_name_export: BUCKET_NAME, names.bucket_arn_export: BUCKET_ARN}
        self._resources = set(resources)

    def tree(self, value: Any, embed: bool = False) -> Any:
        """`value` with every intrinsic function in it evaluated; `embed` lets a
        reference to a resource be part of a string."""
        if isinstance(value, list):
            return [self.tree(item, embed) for item in value]
        if isinstance(value, str):
            if "\x00" in value:
                refuse(f"it holds a NUL character in {shown(value)!r}")
            return value
        if not isinstance(value, dict):
            return value
        functions = [key for key in value if key == "Ref" or key.startswith("Fn::")]
        if not functions:
            return {key: self.tree(inner, embed) for key, inner in value.items()}
        if len(value) != 1:
            refuse(f"it mixes {functions[0]} with other keys ({sorted(value)})")
        ((name, argument),) = value.items()
        if name == "Ref":
            return self._ref(argument)
        if name == "Fn::GetAtt":
            resource, attribute = _pair(name, argument.split(".", 1) if isinstance(argument, str) else argument)
            return self._resource(resource, attribute)
        if name == "Fn::ImportValue":
            export = self.tree(argument, embed)
            if not isinstance(export, str) or export not in self._imports:
                refuse(f"it imports {shown(repr(export))}, which is not its stage's bucket")
            return self._imports[export]
        if name == "Fn::Join":
            delimiter, pieces = _pair(name, argument)
            return self._text(delimiter, embed).join(self._string(piece, embed) for piece in self._list(pieces, embed))
        if name == "Fn::Sub":
            template, variables = argument if isinstance(argument, list) and len(argument) == 2 else (argument, {})
            return self._sub(template, variables, embed)
        if name == "Fn::Select":
            index, items = _pair(name, argument)
            index, items = self.tree(index, embed), self._list(items, embed)
            # An index is a number or a short string of ASCII digits: not "²", which
            # str.isdigit takes and int refuses, nor more digits than int converts.
            position = index if type(index) is int else int(index) if _DIGITS.fullmatch(str(index)) else -1
            if not 0 <= position < len(items):
                refuse(f"it selects item {shown(repr(index))} of {len(items)}")
            return items[position]
        if name == "Fn::Split":
            delimiter, source = _pair(name, argument)
            whole = self._text(source, embed=False)
            if "\x00" in whole:
                refuse(f"it splits {shown(whole)!r}, which holds the stage's bucket")
            separator = self._text(delimiter, embed=False)
            if not separator:
                refuse("it splits by an empty delimiter")
            return whole.split(separator)
        refuse(f"its serving template uses {name}")

    def _ref(self, name: Any) -> Any:
        if isinstance(name, str) and name in self._pseudo:
            return self._pseudo[name]
        return self._resource(name, None)

    def _resource(self, resource: Any, attribute: Any) -> Reference:
        if not (isinstance(resource, str) and resource in self._resources and isinstance(attribute, str | None)):
            refuse(
                f"it refers to {shown(repr(resource))}, which is neither its own resource "
                "nor the stage's account or region"
            )
        return Reference(resource, attribute or None)

    def _sub(self, template: Any, variables: Any, embed: bool) -> str:
        if not isinstance(template, str) or not isinstance(variables, dict):
            refuse(
                f"its Fn::Sub takes {shown(repr(template))} and {shown(repr(variables))}, "
                "not a string and a variable map"
            )
        values = {key: self._text(value, embed) for key, value in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} stays as written, without the "!"
                return "${" + name[1:] + "}"
            if name in values:
                return values[name]
            if name in self._pseudo:
                return self._pseudo[name]
            resource, _, attribute = name.partition(".")
            return self._string(self._resource(resource, attribute), embed)

        return _VARIABLE.sub(substitute, self.tree(template))

    def _text(self, value: Any, embed: bool) -> str:
        return self._string(self.tree(value, embed), embed)

    def _string(self, value: Any, embed: bool) -> str:
        """The evaluated `value` as a piece of a string."""
        if isinstance(value, Reference) and embed:
            return _EMBEDDED
        if not isinstance(value, str):
            refuse(f"it builds a string from {shown(repr(value))}, which only a dashboard's body may")
        return value

    def _list(self, value: Any, embed: bool) -> list[Any]:
        items = self.tree(value, embed)
        if not isinstance(items, list):
            refuse(f"it takes {shown(repr(items))} for a list")
        return items


def shown(value: str) -> str:
    """`value` as a person reads it: the markers named, as they are or as `repr` writes
    them, and cut after `_LONGEST` characters."""
    for marker, name in (
        (BUCKET_NAME, "<stage bucket>"),
        (BUCKET_ARN, "<stage bucket ARN>"),
        (_EMBEDDED, "<reference>"),
    ):
        value = value.replace(marker, name).replace(repr(marker)[1:-1], name)
    return value if len(value) <= _LONGEST else f"{value[:_LONGEST]}..."


def _pair(name: str, argument: Any) -> list[Any]:
    if not (isinstance(argument, list) and len(argument) == 2):
        refuse(f"its {name} takes {shown(repr(argument))}, not two arguments")
    return argument


def refuse(why: str) -> NoReturn:
    """Raise the one error a template a rollback may not deploy ends in: one line,
    whatever names and values of the template it quotes."""
    raise PromotionError(f"The stored assembly is not one a rollback may deploy: {' '.join(why.split())}.")
