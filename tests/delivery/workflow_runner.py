"""The delivery workflow run as a runner runs it: its YAML, and whole jobs, step by
step, on `workflow_machine`'s runner against an AWS emulator.

`run_job` follows GitHub's "Workflow syntax for GitHub Actions" and "Workflow
commands for GitHub Actions": a job's `if:` against its `needs` (skipped unless
they succeeded, if it names no status function), then its steps in order, each
`if:` likewise against the job's status so far and `steps.<id>.outcome`;
`${{ }}` substituted in `env:`, `with:`, `run:` and `outputs:` (in `run:` too, as
GitHub does: that is the injection its hardening guide warns of, and a runner
that skipped it would hide one); fresh `GITHUB_OUTPUT`, `GITHUB_ENV` and
`GITHUB_STEP_SUMMARY` files per step; `continue-on-error` (a failed step's
outcome failure, its conclusion success). Not emulated: cancellation,
`timeout-minutes` (a step gets at most five minutes here), concurrency
groups, environment approvals; a step key, shell or action the runner does
not know stops the test rather than being ignored.
"""

from __future__ import annotations

import dataclasses
import pathlib
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from tests.conftest import ROOT
from tests.delivery.workflow_expressions import condition, interpolate
from tests.delivery.workflow_machine import Runner, machine_environment, run_action, run_script

WORKFLOW = ROOT / ".github" / "workflows" / "deliver.yml"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def jobs() -> dict[str, dict]:
    return workflow()["jobs"]


@dataclasses.dataclass(frozen=True)
class StepRun:
    """A step as the run's log shows it: its id (else its script, else its action),
    outcome (success, failure or skipped), outputs and output."""

    name: str
    outcome: str
    outputs: dict[str, str]
    log: str


@dataclasses.dataclass(frozen=True)
class JobRun:
    """A finished job: its result (success, failure or skipped), its outputs as
    `needs.<job>.outputs` shows them to later jobs, its steps and job summary."""

    job: str
    result: str
    outputs: dict[str, str]
    steps: list[StepRun]
    summary: str
    workspace: pathlib.Path | None

    def step(self, name: str) -> StepRun:
        (found,) = [s for s in self.steps if s.name == name]
        return found

    def outcomes(self) -> list[tuple[str, str]]:
        return [(s.name, s.outcome) for s in self.steps]

    @property
    def log(self) -> str:
        return "\n".join(f"== {s.name}: {s.outcome}\n{s.log}" for s in self.steps)


def succeeded(**outputs: str) -> JobRun:
    """A needed job as a test hands it over: finished green with these outputs."""
    return JobRun("given", "success", dict(outputs), [], "", None)


# Whatever a `run:` step is replaced with: given the step's environment, True if it succeeded.
StandIn = Callable[[Mapping[str, str]], bool]


_STEP_KEYS = {"id", "name", "if", "run", "uses", "with", "env", "shell", "timeout-minutes", "continue-on-error"}


def run_job(
    workflow: dict,
    job_id: str,
    needs: Mapping[str, JobRun],
    *,
    runner: Runner,
    env: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    stand_ins: Mapping[str, StandIn] | None = None,
    after_step: Callable[[StepRun], None] | None = None,
) -> JobRun:
    """Run `job_id` of `workflow` as GitHub would after the jobs in `needs` (each
    job it declares, none else): `env` adds to the runner machine's environment
    (a stub's PATH), `variables` and `secrets` are the `vars` and `secrets` its
    environment has. `stand_ins` replace `run:` steps by their script, each of
    which must be in the job (a step the emulator cannot run, e.g. a real deploy);
    `after_step` sees each step as it ends."""
    job = workflow["jobs"][job_id]
    declared = job.get("needs", [])
    assert set(needs) == set([declared] if isinstance(declared, str) else declared), (job_id, sorted(needs))
    stand_ins = dict(stand_ins or {})
    missing = set(stand_ins) - {s.get("run") for s in job["steps"]}
    assert not missing, f"{job_id} has no step {missing}"
    results = [need.result for need in needs.values()]
    state: dict[str, Any] = {
        "github": runner.github(),
        "vars": dict(variables or {}),
        "secrets": dict(secrets or {}),
        "needs": {name: {"result": need.result, "outputs": need.outputs} for name, need in needs.items()},
        "steps": {},
        "env": {},
        # A job's success() needs every needed job green; one that failed or was skipped makes it false.
        "status": next((r for r in ("failure", "cancelled", "skipped") if r in results), "success"),
    }
    if not condition(job.get("if"), state):
        return JobRun(job_id, "skipped", {}, [], "", None)
    state["status"] = "success"
    runner.directory.mkdir(parents=True, exist_ok=True)
    home = pathlib.Path(tempfile.mkdtemp(prefix=f"{job_id}-", dir=runner.directory))
    workspace = home / "workspace"
    workspace.mkdir()
    machine = machine_environment(runner, home, workspace) | dict(env or {})
    job_env: dict[str, str] = {}
    for name, value in {**workflow.get("env", {}), **job.get("env", {})}.items():
        job_env[name] = interpolate(str(value), {**state, "env": job_env})
    exported: dict[str, str] = {}
    steps: list[StepRun] = []
    summary = ""
    for index, step in enumerate(job["steps"]):
        assert set(step) <= _STEP_KEYS, f"{job_id}: the runner does not know {set(step) - _STEP_KEYS}"
        name = step.get("id") or step.get("run", "").strip() or step["uses"].split("@")[0]
        state["env"] = {**job_env, **exported}
        if not condition(step.get("if"), state):
            record = StepRun(name, "skipped", {}, "")
        else:
            files = home / f"step-{index}"
            files.mkdir()
            commands = {key: files / key.lower() for key in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY")}
            for path in commands.values():
                path.touch()
            step_env = {k: interpolate(str(v), state) for k, v in step.get("env", {}).items()}
            given = {**machine, **job_env, **exported, **step_env, **{k: str(v) for k, v in commands.items()}}
            if "run" in step:
                script = interpolate(step["run"], state)
                if step["run"] in stand_ins:
                    succeeded_, log = stand_ins[step["run"]](given), f"(stood in for: {script})"
                else:
                    succeeded_, log = run_script(script, step.get("shell"), files, workspace, given)
            else:
                inputs = {k: interpolate(str(v), state) for k, v in step.get("with", {}).items()}
                succeeded_, log = run_action(step["uses"], inputs, given, workspace, runner)
            outputs = _file_commands(commands["GITHUB_OUTPUT"])
            exported |= _file_commands(commands["GITHUB_ENV"])
            summary += commands["GITHUB_STEP_SUMMARY"].read_text()
            record = StepRun(name, "success" if succeeded_ else "failure", outputs, log)
            if not succeeded_ and not step.get("continue-on-error"):
                state["status"] = "failure"
        if "id" in step:
            # continue-on-error: a failed step's outcome is failure, its conclusion success.
            passed = record.outcome == "failure" and step.get("continue-on-error")
            state["steps"][step["id"]] = {
                "outcome": record.outcome,
                "conclusion": "success" if passed else record.outcome,
                "outputs": record.outputs,
            }
        steps.append(record)
        if after_step:
            after_step(record)
    outputs = {k: interpolate(str(v), state) for k, v in job.get("outputs", {}).items()}
    return JobRun(job_id, state["status"], outputs, steps, summary, workspace)


def _file_commands(path: pathlib.Path) -> dict[str, str]:
    """`name=value` lines and `name<<DELIMITER` blocks, as GITHUB_OUTPUT and GITHUB_ENV take them."""
    values: dict[str, str] = {}
    lines = iter(path.read_text().splitlines())
    for line in lines:
        name, equals, value = line.partition("=")
        if "<<" in name:
            name, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            else:
                raise AssertionError(f"{path.name}: {name} never ends with {delimiter}")
            values[name] = "\n".join(block)
        elif equals:
            values[name] = value
    return values


def step(job: str, step_id: str) -> dict:
    (found,) = [s for s in jobs()[job]["steps"] if s.get("id") == step_id]
    return found


def run_step(
    job: str, step_id: str, state: dict[str, Any], directory: pathlib.Path, env: Mapping[str, str]
) -> tuple[bool, str, str]:
    """One `run:` step alone, in the project (its node_modules and venv), as `run_job`
    runs a step: (succeeded, its log, what it wrote to the job summary). `env` is the
    step's whole AWS setting and the variables it reads; no AWS setting of this machine."""
    files = pathlib.Path(tempfile.mkdtemp(prefix=f"{step_id}-", dir=directory))
    summary = files / "summary"
    summary.touch()
    runner = Runner(directory=files, aws_endpoint_url=None)
    machine = machine_environment(runner, files, ROOT)
    given = {**machine, "GITHUB_OUTPUT": str(files / "output"), "GITHUB_STEP_SUMMARY": str(summary), **env}
    succeeded_, log = run_script(interpolate(step(job, step_id)["run"], state), None, files, ROOT, given)
    return succeeded_, log, summary.read_text()
