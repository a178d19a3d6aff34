"""The Makefile itself: help, argument checks, and no cdk.json parsing outside the targets that need it."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from rehearsal.user import copy_project
from tests.conftest import ROOT


def make(*args: str, cwd=ROOT, **env: str | None) -> subprocess.CompletedProcess:
    """Run make; an `env` value of None removes that variable."""
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=cwd,
        env={name: value for name, value in {**os.environ, **env}.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=600,
    )


def documented_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^## ([a-z]+)", text, flags=re.M))


def test_help_lists_every_target_a_user_runs():
    result = make("help")
    assert result.returncode == 0
    listed = {line.split()[0] for line in result.stdout.splitlines()[1:] if line and not line[0].isspace()}
    assert (
        listed
        == documented_targets()
        == {
            "synth",
            "test",
            "local",
            "rehearse",
            "deploy",
            "diff",
            "logs",
            "destroy",
            "promote",
            "digest",
            "smoke",
            "assembly",
            "status",
            "clean",
        }
    )


@pytest.mark.parametrize(
    "variables, line",
    [
        (
            (),
            "make promote needs TO=<stage> and either FROM=<stage> (promote) or RECORD=<key>|previous|last-verified "
            "(roll back)",
        ),
        (("TO=staging",), "make promote needs TO=<stage> and either FROM=<stage>"),
        (("FROM=dev",), "make promote needs TO=<stage> and either FROM=<stage>"),
        (
            ("FROM=dev", "TO=prod", "RECORD=previous"),
            "make promote takes FROM= (promote) or RECORD= (roll back), not both",
        ),
    ],
)
def test_promote_names_its_make_variables(variables, line):
    result = make("promote", *variables)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(line)
    assert "--to" not in result.stderr


@pytest.mark.parametrize(
    "variables, line",
    [
        # An empty RECORD= is not a rollback: the promotion from dev goes on (to credentials here).
        (("FROM=dev", "TO=staging", "RECORD="), "No AWS credentials found"),
        # An empty DIGEST= is a failed check, never a check switched off.
        (("FROM=dev", "TO=staging", "DIGEST="), "DIGEST '' is not a tree digest"),
    ],
)
def test_promote_reads_an_empty_variable_as_its_meaning(tmp_path, variables, line):
    unset = dict.fromkeys(("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "CI"))
    result = make("promote", *variables, HOME=str(tmp_path), **unset)
    assert result.returncode != 0
    (message,) = [text for text in result.stderr.splitlines() if not text.startswith("make")]
    assert message.startswith(line)


@pytest.mark.parametrize("target", ["deploy", "diff", "destroy", "logs", "digest", "smoke", "status", "assembly"])
@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_stage_is_named_as_the_make_variable(target, value):
    result = make("-s", target, f"STAGE={value}")
    assert result.returncode == 2
    line, made = result.stderr.splitlines()
    assert line == f"make {target} needs STAGE=<stage>, a stage of cdk.json (STAGE=dev, for one); STAGE= is empty"
    # make's own last line; `make[N]:` when this test itself runs under make (make test).
    assert re.match(r"make(\[\d+\])?: \*\*\* \[Makefile:", made) and "--stage" not in result.stderr


@pytest.mark.parametrize("switch, json_given", [("JSON=1", True), ("JSON=0", False), ("JSON=", False)])
def test_status_json_0_is_off(switch, json_given):
    result = make("-n", "status", "STAGE=dev", switch)
    (line,) = [text for text in result.stdout.splitlines() if "delivery.status" in text]
    assert line.endswith("--json") is json_given


@pytest.mark.parametrize("python, found", [("", "neither"), ("python3.10", "python3.10")])
def test_a_fresh_clone_without_a_suitable_python_stops_in_one_line(tmp_path, python, found):
    project = tmp_path / "fresh"
    copy_project(project)
    for name in (".venv", ".venv-emulators", ".venv-checkov"):
        (project / name).unlink()  # as on a fresh clone
    result = make("synth", f"PYTHON={python}", cwd=project)
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == (
        f"Python 3.11 or 3.12 is needed (python3.11 or python3.12 on PATH, or PYTHON=...); found {found}."
    )
    assert not (project / ".venv").exists()


def test_promote_checks_its_variables_before_installing_anything(tmp_path):
    project = tmp_path / "fresh"
    copy_project(project)
    (project / ".venv").unlink()
    result = make("promote", "TO=staging", cwd=project)
    assert result.returncode == 2 and not (project / ".venv").exists()


@pytest.fixture
def broken_project(tmp_path):
    project = tmp_path / "project"
    copy_project(project)
    (project / "cdk.json").write_text('{"app": "x", "context": {"stages": ')
    return project


def test_a_malformed_cdk_json_fails_synth_in_one_line(broken_project):
    result = make("synth", cwd=broken_project)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert len(errors) == 1 and errors[0].startswith(f"Configuration error: {broken_project}/cdk.json: not valid JSON")
    assert "Traceback" not in result.stdout + result.stderr


def test_targets_that_need_no_config_ignore_a_malformed_cdk_json(broken_project):
    assert make("clean", cwd=broken_project).returncode == 0
    assert make("help", cwd=broken_project).returncode == 0


def test_a_cdk_json_without_stages_fails_synth_in_one_line(tmp_path):
    project = tmp_path / "project"
    copy_project(project)
    document = json.loads((project / "cdk.json").read_text())
    document["context"]["stages"] = {}
    (project / "cdk.json").write_text(json.dumps(document))
    result = make("synth", cwd=project)
    assert result.returncode != 0
    assert "Configuration error: stages: missing; declare at least one stage in cdk.json context" in result.stderr


def test_make_synth_the_main_job_passes_as_written(tmp_path):
    # In a shell whose AWS_PROFILE names a profile this machine lacks: synth needs no account.
    config = tmp_path / "aws-config"
    config.write_text("[profile other]\nregion = eu-west-1\n")
    result = make("synth", AWS_PROFILE="gone", AWS_CONFIG_FILE=str(config))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "All stages synthesized; cdk-nag, cfn-lint and checkov clean: dev staging prod" in result.stdout
    for stage in ("dev", "staging", "prod"):
        assert sorted(p.name for p in (ROOT / "cdk.out" / stage).glob("*.template.json")) == [
            f"tfhub-serving-{stage}-serving.template.json",
            f"tfhub-serving-{stage}-storage.template.json",
        ]


FAKE_INSTALLER = """#!/bin/bash
# Stands in for python and npm: makes venvs, logs each install's start and end.
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
elif [ "$1" = ci ] || [[ " $* " == *" -r "* ]]; then
  [ "$1" = ci ] && mkdir -p node_modules
  # 3 s: long beyond the jitter of starting processes on a loaded 2-core machine.
  echo "$(date +%s.%N) start $0 $*" >> "$INSTALL_LOG"; sleep 3; echo "$(date +%s.%N) end $0 $*" >> "$INSTALL_LOG"
fi
"""


def test_a_fresh_machine_runs_the_installs_side_by_side(tmp_path):
    """A fresh `make synth` waits for its longest install, not for their sum."""
    project, fakes, log = tmp_path / "fresh", tmp_path / "bin", tmp_path / "installs.log"
    copy_project(project)
    for name in (".venv", ".venv-emulators", ".venv-checkov", "node_modules"):
        (project / name).unlink()
    fakes.mkdir()
    for name in ("python3.11", "npm"):
        (fakes / name).write_text(FAKE_INSTALLER)
        (fakes / name).chmod(0o755)
    result = make(
        "deps-checkov",
        f"PYTHON={fakes / 'python3.11'}",
        cwd=project,
        PATH=f"{fakes}{os.pathsep}{os.environ['PATH']}",
        INSTALL_LOG=str(log),
    )
    assert result.returncode == 0, result.stderr
    windows: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        at, _, what = line.split(" ", 2)
        windows.setdefault(what.split(" ", 1)[1], []).append(float(at))
    installs = [
        "-m pip install --quiet -r requirements.txt",
        "-m pip install --quiet -r requirements-checkov.txt",
        "ci --no-audit --no-fund --loglevel=error",
    ]
    assert set(installs) <= set(windows), windows
    starts, ends = [windows[what][0] for what in installs], [windows[what][1] for what in installs]
    assert max(starts) < min(ends), f"the installs ran one after another: {windows}"
    for stamp in (".venv/.installed", ".venv-checkov/.installed", "node_modules/.installed"):
        assert (project / stamp).exists()
