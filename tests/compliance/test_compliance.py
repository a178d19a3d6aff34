"""The synth-time gates: cdk-nag AwsSolutions and cfn-lint on every stage's templates."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from tests.conftest import ROOT, STAGES, synth_stage


def templates(outdir: pathlib.Path) -> list[pathlib.Path]:
    found = sorted(outdir.glob("*.template.json"))
    assert len(found) == 2, found  # storage and serving
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_stage_passes_the_nag_gate_with_no_findings(synthesized, stage):
    # Synthesis raises on any unacknowledged finding; also read the report it wrote.
    synth = synthesized(stage)
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert report["pluginReports"] == [] or all(p["summary"]["status"] == "success" for p in report["pluginReports"])


def test_the_nag_gate_bites_on_a_non_compliant_construct(tmp_path):
    stage = synth_stage("dev", tmp_path)
    bucket = s3.Bucket(stage.storage, "Careless")  # no logs, no SSL-only policy
    role = iam.Role(stage.serving, "Loose", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:Get*"], resources=["*"]))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        cdk.App.of(stage.storage).synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    violations = {
        (v["ruleName"], r["constructPath"])
        for p in report["pluginReports"]
        for v in p["violations"]
        for r in v["violatingConstructs"]
    }
    assert ("AwsSolutions-S1", f"{bucket.node.path}/Resource") in violations
    assert ("AwsSolutions-S10", f"{bucket.node.path}/Resource") in violations
    assert (
        "AwsSolutions-IAM5[Action::s3:Get*]",
        "tfhub-serving-dev-serving/Loose/DefaultPolicy/Resource",
    ) in violations
    # Nothing of ours leaks into the report: only the planted constructs fail.
    assert {path for _, path in violations} == {
        f"{bucket.node.path}/Resource",
        "tfhub-serving-dev-serving/Loose/DefaultPolicy/Resource",
    }


def run_cfn_lint(paths: list[pathlib.Path]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(pathlib.Path(sys.executable).with_name("cfn-lint")), *map(str, paths)],
        cwd=ROOT,  # picks up .cfnlintrc.yaml
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("stage", STAGES)
def test_cfn_lint_finds_no_errors_or_warnings(synthesized, stage):
    result = run_cfn_lint(templates(synthesized(stage).outdir))
    # Exit code bits: 2 = errors, 4 = warnings, 8 = informational; 1 = crashed.
    assert result.returncode & 7 == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(synthesized, tmp_path):
    (serving,) = [p for p in templates(synthesized("dev").outdir) if p.name.endswith("-serving.template.json")]
    template = json.loads(serving.read_text())
    model = next(r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Model")
    model["Properties"]["EnableNetworkIsolation"] = "sometimes"
    broken = tmp_path / "broken.template.json"
    broken.write_text(json.dumps(template))
    result = run_cfn_lint([broken])
    assert result.returncode & 2, result.stdout
    assert "E3012 'sometimes' is not of type 'boolean'" in result.stdout
