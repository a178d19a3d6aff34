"""The smoke test against moto's SageMaker runtime: shapes and values checked, latency reported."""

from __future__ import annotations

import json

import boto3
import pytest
import requests
from moto import mock_aws

from delivery.smoke import NO_EXPECTED_OUTPUT, check_columns, check_response, smoke

MANIFEST = {
    "signature": "serving_default",
    "sample_input": ["hello world", "hi"],
    "signatures": {
        "serving_default": {
            "outputs": {
                "embedding": {"name": "e:0", "dtype": "float32", "shape": [None, 3]},
                "known": {"name": "k:0", "dtype": "int32", "shape": [None]},
            }
        }
    },
}
GOOD = {"predictions": [{"embedding": [0.1, 0.2, 0.3], "known": 1}, {"embedding": [0, 0, 0], "known": 0}]}


def answer(body) -> None:
    """moto's runtime returns whatever its API was told to."""
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={
            "results": [
                {
                    "Body": json.dumps(body),
                    "ContentType": "application/json",
                    "InvokedProductionVariant": "AllTraffic",
                    "CustomAttributes": "",
                }
            ]
        },
        timeout=5,
    )


EXPECTED = {**MANIFEST, "sample_output": {"embedding": [[0.1, 0.2, 0.3], [0.0, 0.0, 0.0]], "known": [1, 0]}}


@mock_aws
def test_a_response_shaped_like_the_signature_with_the_packaged_values_passes_with_latency():
    answer(GOOD)
    ticks = iter([10.0, 10.25])
    report = smoke(
        boto3.client("sagemaker-runtime", region_name="us-east-1"),
        "tfhub-serving-dev",
        EXPECTED,
        clock=lambda: next(ticks),
    )
    assert report == {
        "endpoint": "tfhub-serving-dev",
        "instances": 2,
        "latency_ms": 250.0,
        "checked_values": True,
        "problems": [],
    }


@mock_aws
def test_without_expected_values_only_a_hand_run_may_pass_on_shape_alone():
    """A manifest without `sample_output` gives nothing to compare the values with:
    a promotion (the default) fails on it, a hand run reports shape only."""
    answer(GOOD)
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    required = smoke(runtime, "e", MANIFEST)
    assert required["checked_values"] is False and required["problems"] == [NO_EXPECTED_OUTPUT]
    assert "package the model again" in NO_EXPECTED_OUTPUT
    by_hand = smoke(runtime, "e", MANIFEST, require_values=False)
    assert by_hand["checked_values"] is False and by_hand["problems"] == []


@mock_aws
@pytest.mark.parametrize(
    ("embedding", "problem"),
    [
        ([0.10004, 0.2, 0.3], None),  # within the tolerance: another TensorFlow build's rounding
        ([0.2, 0.2, 0.3], "output 'embedding of instance 0[0]' is 0.2, the packaged model answered 0.1"),
    ],
)
def test_the_answer_must_hold_the_values_the_packaged_model_gave(embedding, problem):
    answer({"predictions": [{"embedding": embedding, "known": 1}, {"embedding": [0, 0, 0], "known": 0}]})
    report = smoke(boto3.client("sagemaker-runtime", region_name="us-east-1"), "e", EXPECTED)
    assert report["checked_values"] is True
    assert report["problems"] == ([] if problem is None else [problem])


def stubbed_runtime(*errors: str):
    """A runtime that answers `errors` first, then GOOD twice (warm-up and measured call)."""
    import io

    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    stubber = Stubber(runtime)
    for code in errors:
        stubber.add_client_error("invoke_endpoint", service_error_code=code, http_status_code=400)
    for _ in range(2):
        body = json.dumps(GOOD).encode()
        stubber.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body))})
    stubber.activate()
    return runtime, stubber


def test_a_cold_endpoint_is_warmed_up_and_transient_errors_retried():
    runtime, stubber = stubbed_runtime("ModelNotReadyException", "ThrottlingException", "ModelError")
    pauses = []
    report = smoke(runtime, "e", EXPECTED, sleep=pauses.append)
    assert report["problems"] == [] and pauses == [2.0, 4.0, 8.0]
    stubber.assert_no_pending_responses()


def test_a_lasting_or_permanent_error_fails_in_one_line():
    from tools.cli import UserError

    runtime, _ = stubbed_runtime("ValidationError")
    with pytest.raises(UserError, match="Invoking e failed: ValidationError"):
        smoke(runtime, "e", MANIFEST, sleep=lambda _: None)
    runtime, _ = stubbed_runtime(*["ServiceUnavailable"] * 20)
    pauses = []
    with pytest.raises(UserError, match="ServiceUnavailable"):
        smoke(runtime, "e", MANIFEST, sleep=pauses.append)
    assert sum(pauses) <= 180


@mock_aws
def test_a_wrong_answer_is_a_failure():
    answer({"predictions": [{"embedding": [0.1, 0.2], "known": 1}]})
    report = smoke(boto3.client("sagemaker-runtime", region_name="us-east-1"), "e", EXPECTED)
    assert report["problems"] == ["2 instances sent, 1 predictions back"]


@pytest.mark.parametrize(
    ("response", "problem"),
    [
        ({"error": "model not loaded"}, "the response has no 'predictions'"),
        (
            {"predictions": [{"embedding": [1, 2], "known": 1}] * 2},
            "output 'embedding' has shape [2], the signature says [3]",
        ),
        ({"predictions": [{"embedding": [1, 2, 3]}] * 2}, "a prediction's outputs are ['embedding']"),
    ],
)
def test_shape_problems_are_named(response, problem):
    problems = check_response(response, ["a", "b"], MANIFEST["signatures"]["serving_default"]["outputs"])
    assert problems and problems[0].startswith(problem)


def test_single_output_signatures_take_bare_predictions():
    outputs = {"scores": {"name": "s:0", "dtype": "float32", "shape": [None, 2]}}
    assert check_response({"predictions": [[0.1, 0.9]]}, ["x"], outputs) == []
    assert check_response({"predictions": [[0.1]]}, ["x"], outputs) == [
        "output 'scores' has shape [1], the signature says [2]"
    ]


@mock_aws
def test_a_columnar_sample_is_sent_as_inputs_and_checked_as_outputs():
    manifest = {
        "signature": "scale",
        "sample_input": {"values": [[1.0, 2.0]]},
        "signatures": {"scale": {"outputs": {"scaled": {"name": "s:0", "dtype": "float32", "shape": [None, 2]}}}},
        "sample_output": {"scaled": [[3.0, 6.0]]},
    }
    answer({"outputs": [[3.0, 6.0]]})
    report = smoke(boto3.client("sagemaker-runtime", region_name="us-east-1"), "e", manifest)
    assert report["problems"] == [] and report["checked_values"] is True
    outputs = manifest["signatures"]["scale"]["outputs"]
    assert check_columns({"outputs": [[3.0]]}, 1, outputs) == [
        "output 'scaled' has shape [1, 1], the signature says [1, 2]"
    ]
    assert check_columns({"predictions": [[3.0, 6.0]]}, 1, outputs)[0].startswith("the response has no 'outputs'")


def serving(monkeypatch, manifest: dict, artifact: str = "artifacts/p/output/model/") -> None:
    """Dev deployed in moto, serving an artifact with `manifest` (either form), its
    endpoint answering GOOD."""
    import io
    import tarfile

    from delivery import smoke as smoke_module
    from delivery.deployed import DeployedStage
    from stacks.stage.config import load_from_cdk_json
    from tests.conftest import ROOT

    session = boto3.session.Session(region_name="us-east-1")
    s3 = session.client("s3")
    s3.create_bucket(Bucket="stage-bucket")
    body = json.dumps(manifest).encode()
    if artifact.endswith(".tar.gz"):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, content in (("./m/1/saved_model.pb", b"pb"), ("./manifest.json", body)):
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
        s3.put_object(Bucket="stage-bucket", Key=artifact, Body=buffer.getvalue())
    else:
        s3.put_object(Bucket="stage-bucket", Key=f"{artifact}manifest.json", Body=body)
    session.client("cloudformation").create_stack(
        StackName="tfhub-serving-dev-serving",
        TemplateBody=json.dumps(
            {
                "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {
                    "EndpointName": {"Value": "tfhub-serving-dev"},
                    "ArtifactLocation": {"Value": f"s3://stage-bucket/{artifact}"},
                },
            }
        ),
    )
    config = load_from_cdk_json(ROOT / "cdk.json", "dev", {"AWS_REGION": "us-east-1"})
    monkeypatch.setattr(smoke_module, "deployed_stage", lambda stage: DeployedStage(config, session))
    answer(GOOD)


@mock_aws
@pytest.mark.parametrize("artifact", ["artifacts/p/output/model.tar.gz", "artifacts/p/output/model/"])
def test_make_smoke_reads_the_manifest_of_either_artifact_form(monkeypatch, capsys, artifact):
    """A serverless stage serves a model.tar.gz: smoke finds the manifest inside it."""
    from delivery import smoke as smoke_module

    monkeypatch.setenv("CI", "true")
    serving(monkeypatch, EXPECTED, artifact)
    assert smoke_module.main(["--stage", "dev"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == [] and report["checked_values"] is True


@mock_aws
def test_make_smoke_in_ci_fails_without_expected_values_by_hand_says_they_were_not_checked(monkeypatch, capsys):
    from delivery import smoke as smoke_module

    serving(monkeypatch, MANIFEST)
    monkeypatch.setenv("CI", "true")
    assert smoke_module.main(["--stage", "dev"]) == 1
    printed = capsys.readouterr()
    assert json.loads(printed.out)["problems"] == [NO_EXPECTED_OUTPUT] and printed.err == ""
    monkeypatch.delenv("CI")
    assert smoke_module.main(["--stage", "dev"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["problems"] == []
    assert printed.err.splitlines() == [f"Values NOT checked, only the answer's shape: {NO_EXPECTED_OUTPUT}."]
