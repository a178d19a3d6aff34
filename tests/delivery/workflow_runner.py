"""The delivery workflow run as a runner runs it: its YAML, GitHub's expression syntax
(the subset it uses), and one step's script under bash -e with GITHUB_OUTPUT and the
job's env."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
from typing import Any

import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "deliver.yml"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def jobs() -> dict[str, dict]:
    return workflow()["jobs"]


def step(job: str, step_id: str) -> dict:
    (found,) = [s for s in jobs()[job]["steps"] if s.get("id") == step_id]
    return found


_TOKEN = re.compile(r"\s*(&&|\|\||==|!=|!|\(|\)|'[^']*'|[A-Za-z_][\w-]*\(\)|[A-Za-z_][\w.-]*)")


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """Status functions, property paths (missing ones are ''), ==, !=, &&, ||, !,
    parentheses and 'strings', evaluated as GitHub documents them."""
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
        else:
            value: Any = context
            for part in token.split("."):
                value = value.get(part, "") if isinstance(value, dict) else ""
            python.append(repr(value))
    return eval("".join(python), {"__builtins__": {}})  # noqa: S307 - built from the tokens above


def interpolate(text: str, context: dict[str, Any]) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(evaluate(m.group(1), context)), text)


def run_step(
    job: str,
    step_id: str,
    context: dict[str, Any],
    tmp_path: pathlib.Path,
    env: dict[str, str] | None = None,
    path_prefix: str = "",
) -> tuple[subprocess.CompletedProcess, dict, str]:
    """The step's script under `bash -e` (GitHub's default shell) in the project, with
    the job's env interpolated from `context`; returns the result, what it wrote to
    GITHUB_OUTPUT and to the job summary."""
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text(""), summary.write_text("")
    script = tmp_path / "step.sh"
    script.write_text(step(job, step_id)["run"])
    # A runner's shell: not inside the make that runs these tests, no AWS settings of this machine.
    shell = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS") and not k.startswith("AWS_")
    }
    job_env = {k: interpolate(str(v), context) for k, v in jobs()[job].get("env", {}).items()}
    runner = {
        "CI": "true",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SHA": context["github"]["sha"],
        "GITHUB_REPOSITORY": "org/repo",
        "PATH": path_prefix + shell["PATH"],
    }
    result = subprocess.run(
        ["bash", "-e", str(script)],
        cwd=ROOT,
        env={**shell, **runner, **job_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return result, outputs, summary.read_text()


def context(**needs_outputs: dict[str, str]) -> dict[str, Any]:
    return {
        "github": {"sha": "c" * 40, "token": "t", "event_name": "push", "ref": "refs/heads/main"},
        "vars": {},
        "needs": {job: {"outputs": outputs} for job, outputs in needs_outputs.items()},
        "status": "success",
        "steps": {},
    }
