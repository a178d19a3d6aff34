"""From template to artifact without AWS: the custom resource's properties, as
CloudFormation would send them, and the job's contract in the handler's environment
become the handler's CreateTrainingJob request;
that request, laid out as /opt/ml, runs the real packaging job through the
SageMaker training toolkit and yields a servable artifact; a name it cannot carry is refused."""

from __future__ import annotations

import json

import pytest
import tensorflow as tf
import train
from sagemaker_training import mapping

from rehearsal.cloudformation import as_sent_to_custom_resource
from stacks.model_packaging import source_archive
from stacks.model_packaging.handler_asset.packaging_handler import handler
from tests.conftest import ROOT
from tools.toolkit import run_toolkit, write_layout


def test_template_properties_run_through_the_toolkit_to_a_servable_artifact(synthesized, hub, text_archive, tmp_path):
    serving = synthesized("dev").serving
    (resource,) = serving.find_resources("Custom::TfHubPackagingJob").values()
    (on_event,) = serving.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "packaging_handler.handler.on_event"}}
    ).values()
    properties = as_sent_to_custom_resource(resource["Properties"])
    # Deploy-time values CloudFormation would resolve; the handle points at a
    # loopback hub instead of tfhub.dev.
    properties.update(
        RoleArn="arn:aws:iam::123456789012:role/exec",
        SourceUri="s3://cdk-assets/source.tar.gz",
        TrainUri="s3://stage-bucket/trainingData/train/",
        OutputUri="s3://stage-bucket/artifacts/packaging/",
        HubHandle=f"{hub.url}/google/universal-sentence-encoder/4",
    )
    hub.routes["/google/universal-sentence-encoder/4"] = (200, text_archive)
    props = handler.parse_properties(properties)
    contract = handler.JobContract.from_environment(on_event["Properties"]["Environment"]["Variables"])
    request = handler.training_job_request(handler.job_name(props), props, contract)

    # What SageMaker does with the request: the channel, the hyperparameters,
    # and the source archive (here the very bytes the asset ships).
    archive, _ = source_archive.build(ROOT / "packaging_job")
    hyperparameters = {k: json.loads(v) for k, v in request["HyperParameters"].items()}
    assert hyperparameters.pop("sagemaker_program") == "train.py"
    assert hyperparameters.pop("sagemaker_submit_directory") == "s3://cdk-assets/source.tar.gz"
    base = tmp_path / "opt-ml"
    write_layout(base, hyperparameters, submit_directory=str(archive))
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train"]
    # The contract across the boundary: every hyperparameter, as the toolkit turns it
    # into arguments, is an option of the job's, and the limits arrive as the stage set them.
    options, unknown = train.parser().parse_known_args(mapping.to_cmd_args(hyperparameters))
    assert unknown == [] and props.limits
    assert {key: getattr(options, key) for key, _ in props.limits} == dict(props.limits)

    result = run_toolkit(base)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    manifest = json.loads((base / "model" / "manifest.json").read_text())
    assert manifest["source_handle"] == properties["HubHandle"]
    assert manifest["sample_output_shapes"] == {"embedding": [1, 16], "known": [1]}
    served = tf.saved_model.load(str(base / "model" / "universal-sentence-encoder" / "4"))
    known = served.signatures["serving_default"](tf.constant(["hello world", "hello"]))["known"]
    assert known.numpy().tolist() == [0, 1]


@pytest.mark.parametrize("name", ["bad/name", "../up", "name\n", "_under", "n" * 64])
def test_the_job_refuses_a_model_name_tf_serving_and_s3_keys_cannot_carry(name, capsys):
    # The handler passes cdk.json's checked name; `make local MODEL_NAME=` and any
    # other caller reach the job unchecked, and the name becomes a folder.
    with pytest.raises(SystemExit) as stopped:
        train.parse_args(["--hub-handle", "/x", "--model-name", name])
    assert stopped.value.code == 2
    assert f"argument --model-name/--model_name: {name!r} is not allowed; use letters" in capsys.readouterr().err
