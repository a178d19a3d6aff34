"""The app through the real CDK CLI: offline, credential-free, deterministic, fail-fast."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

from tests.conftest import ROOT, cdk_json_context

CDK = ROOT / "node_modules" / ".bin" / "cdk"


def cli_synth(tmp_path: pathlib.Path, out: str, *args: str, cwd: pathlib.Path = ROOT):
    """`cdk synth` with an empty HOME and no AWS variables: no credentials, no config."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": f"{CDK.parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
    }
    return subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "-o", str(tmp_path / out), *args, "**"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def template_bytes(outdir: pathlib.Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(outdir.glob("assembly-*/*.template.json"))}


def test_synth_without_credentials_is_byte_identical_twice(tmp_path):
    first = cli_synth(tmp_path, "first", "-c", "stage=dev")
    assert first.returncode == 0, first.stderr
    second = cli_synth(tmp_path, "second", "-c", "stage=dev")
    assert second.returncode == 0, second.stderr
    a, b = template_bytes(tmp_path / "first"), template_bytes(tmp_path / "second")
    assert len(a) == 2
    assert a == b


def test_unknown_stage_fails_in_one_line_and_synthesizes_nothing(tmp_path):
    result = cli_synth(tmp_path, "out", "-c", "stage=qa")
    assert result.returncode != 0
    assert (
        "Configuration error: stage: 'qa' is not declared; allowed: dev, prod, staging\n"
        in result.stderr
    )
    assert template_bytes(tmp_path / "out") == {}


def copy_project(tmp_path: pathlib.Path, edit) -> pathlib.Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "app.py", project)
    shutil.copytree(ROOT / "stacks", project / "stacks", ignore=shutil.ignore_patterns("__pycache__"))
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    edit(cdk_json["context"])
    cdk_json["app"] = f"{ROOT / '.venv' / 'bin' / 'python'} app.py"
    (project / "cdk.json").write_text(json.dumps(cdk_json))
    return project


def test_bad_value_in_cdk_json_fails_synth_naming_key_and_allowed_values(tmp_path):
    def edit(context):
        context["stages"]["staging"]["serving"]["instances"]["type"] = "m5.large"

    project = copy_project(tmp_path, edit)
    result = cli_synth(tmp_path, "out", "-c", "stage=staging", cwd=project)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("Configuration error")]
    assert errors == [
        "Configuration error: stages.staging.serving.instances.type: 'm5.large' is not "
        "allowed; expected a SageMaker instance type such as 'ml.m5.large' (it starts with 'ml.')"
    ]
    assert template_bytes(tmp_path / "out") == {}


def test_cdk_json_declares_the_three_stages():
    assert set(cdk_json_context()["stages"]) == {"dev", "staging", "prod"}
