"""The app through the real CDK CLI: offline, credential-free, deterministic, fail-fast."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, cdk_json_context

CDK = ROOT / "node_modules" / ".bin" / "cdk"


def cdk(tmp_path: pathlib.Path, *args: str, cwd: pathlib.Path = ROOT, **env: str):
    """The CDK CLI with an empty HOME and no AWS variables but `env`: no credentials, no config."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [str(CDK), *args, "--no-notices"],
        cwd=cwd,
        env={"PATH": f"{CDK.parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def cli_synth(tmp_path: pathlib.Path, out: str, *args: str, cwd: pathlib.Path = ROOT, **env: str):
    return cdk(tmp_path, "synth", "--quiet", "-o", str(tmp_path / out), *args, cwd=cwd, **env)


def template_bytes(outdir: pathlib.Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(outdir.glob("*.template.json"))}


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
    assert "Configuration error: stage: 'qa' is not declared; allowed: dev, prod, staging\n" in result.stderr
    assert template_bytes(tmp_path / "out") == {}


def copy_project(tmp_path: pathlib.Path, edit) -> pathlib.Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "app.py", project)
    for folder in ("stacks", "packaging_job"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
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
        "allowed; expected an instance type SageMaker offers for real-time endpoints, such as 'ml.m5.large' "
        "(it starts with 'ml.')"
    ]
    assert template_bytes(tmp_path / "out") == {}


def test_an_instance_type_without_the_pinned_image_fails_in_one_line(tmp_path):
    """The SDK's image lookup refuses it; the app says so as a configuration error, not a traceback."""
    context = cdk_json_context()
    context["stages"]["staging"]["serving"]["instances"]["type"] = "ml.inf2.xlarge"
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "app.py"],
        cwd=ROOT,
        env={
            "PATH": f"{CDK.parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "CDK_OUTDIR": str(tmp_path / "out"),
            "CDK_CONTEXT_JSON": json.dumps({**context, "stage": "staging"}),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Configuration error")]
    assert len(errors) == 1
    assert errors[0].startswith(
        "Configuration error: stages.staging.serving.instances.type: 'ml.inf2.xlarge' is not allowed; "
    )


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_cli_selects_exactly_the_chosen_stages_stacks(tmp_path, stage):
    # `cdk deploy --all` and `cdk destroy --all` select what `cdk list` lists:
    # the top-level stacks of the app, which holds the one stage asked for.
    result = cdk(tmp_path, "list", "-c", f"stage={stage}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"tfhub-serving-{stage}-storage", f"tfhub-serving-{stage}-serving"]


def test_synth_without_a_stack_writes_both_templates_and_names_them(tmp_path):
    result = cli_synth(tmp_path, "out", "-c", "stage=staging")
    assert result.returncode == 0, result.stderr
    assert sorted(template_bytes(tmp_path / "out")) == [
        "tfhub-serving-staging-serving.template.json",
        "tfhub-serving-staging-storage.template.json",
    ]
    assert (
        "Supply a stack id (tfhub-serving-staging-storage, tfhub-serving-staging-serving) to display its template."
    ) in result.stdout + result.stderr


def test_a_stale_aws_profile_does_not_break_synth(tmp_path):
    result = cli_synth(tmp_path, "out", "-c", "stage=dev", AWS_PROFILE="gone")
    assert result.returncode == 0, result.stderr
    assert len(template_bytes(tmp_path / "out")) == 2


def dev_environment(outdir: pathlib.Path) -> str:
    manifest = json.loads((outdir / "manifest.json").read_text())
    return manifest["artifacts"]["tfhub-serving-dev-serving"]["environment"]


def test_dev_takes_its_region_by_the_region_rule(tmp_path):
    (tmp_path / "home" / ".aws").mkdir(parents=True)
    (tmp_path / "home" / ".aws" / "config").write_text("[profile work]\nregion = ap-south-1\n")
    by_variable = cli_synth(tmp_path, "variable", "-c", "stage=dev", AWS_REGION="eu-west-1", AWS_PROFILE="work")
    by_profile = cli_synth(tmp_path, "profile", "-c", "stage=dev", AWS_PROFILE="work")
    assert by_variable.returncode == by_profile.returncode == 0, by_variable.stderr + by_profile.stderr
    assert dev_environment(tmp_path / "variable") == "aws://unknown-account/eu-west-1"
    assert dev_environment(tmp_path / "profile") == "aws://unknown-account/ap-south-1"


def test_cdk_json_declares_the_three_stages():
    assert set(cdk_json_context()["stages"]) == {"dev", "staging", "prod"}
