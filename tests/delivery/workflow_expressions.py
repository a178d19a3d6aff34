"""GitHub's expression syntax, the subset the delivery workflow uses, as "Evaluate
expressions in workflows and actions" documents it: `if:` conditions and the
`${{ }}` substituted into a workflow's values."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"\s*(&&|\|\||==|!=|!|\(|\)|'[^']*'|[A-Za-z_][\w-]*\(\)|[A-Za-z_][\w.-]*)")
_LITERALS = {"true": True, "false": False, "null": None}


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """Status functions, property paths (missing ones are ''), true/false/null, ==,
    !=, &&, ||, !, parentheses and 'strings', evaluated as GitHub documents them."""
    expression = expression.strip().removeprefix("${{").removesuffix("}}")
    python, position = [], 0
    while position < len(expression.rstrip()):
        match = _TOKEN.match(expression, position)
        assert match, f"cannot read {expression[position:]!r}"
        token, position = match.group(1), match.end()
        if token in ("&&", "||", "!"):
            python.append({"&&": " and ", "||": " or ", "!": " not "}[token])
        elif token in ("==", "!=", "(", ")") or token.startswith("'"):
            python.append(token)
        elif token.endswith("()"):
            python.append(
                repr(context["status"] == token[:-2] if token[:-2] in ("success", "failure", "cancelled") else True)
            )  # always()
        elif token in _LITERALS:
            python.append(repr(_LITERALS[token]))
        else:
            assert not expression[position:].lstrip().startswith("("), f"no function {token}() here"
            value: Any = context
            for part in token.split("."):
                value = value.get(part, "") if isinstance(value, dict) else ""
            python.append(repr(value))
    return eval("".join(python), {"__builtins__": {}})  # noqa: S307 - built from the tokens above


def interpolate(text: str, context: dict[str, Any]) -> str:
    def text_of(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else "" if value is None else str(value)

    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: text_of(evaluate(m.group(1), context)), text)


_STATUS_FUNCTION = re.compile(r"\b(?:success|failure|cancelled|always)\(\)")


def condition(expression: str | bool | None, context: dict[str, Any]) -> bool:
    """A job's or step's `if:`. GitHub: "A default status check of success() is
    applied unless you include one of these functions"."""
    if isinstance(expression, bool):
        expression = str(expression).lower()
    expression = (expression or "success()").strip().removeprefix("${{").removesuffix("}}")
    if not _STATUS_FUNCTION.search(expression):
        expression = f"success() && ({expression})"
    return bool(evaluate(expression, context))


def context(**needs_outputs: dict[str, str]) -> dict[str, Any]:
    """An expression context for checking one condition on its own."""
    return {
        "github": {"sha": "c" * 40, "token": "t", "event_name": "push", "ref": "refs/heads/main"},
        "vars": {},
        "needs": {job: {"outputs": outputs} for job, outputs in needs_outputs.items()},
        "status": "success",
        "steps": {},
    }
