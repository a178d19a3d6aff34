"""Serving stack: Model, EndpointConfig and Endpoint as the stage config says."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from stacks.rulebook.limits import has_instance_store
from tests.conftest import STAGES, synth_stage


def only(template, resource_type):
    found = template.find_resources(resource_type)
    assert len(found) == 1, found
    return next(iter(found.values()))


@pytest.mark.parametrize("stage", STAGES)
def test_model_and_config_names_are_generated_endpoint_name_is_stable(synthesized, stage):
    serving = synthesized(stage).serving
    serving.has_resource_properties("AWS::SageMaker::Model", {"ModelName": Match.absent()})
    serving.has_resource_properties("AWS::SageMaker::EndpointConfig", {"EndpointConfigName": Match.absent()})
    serving.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": f"tfhub-serving-{stage}",
            "EndpointConfigName": {"Fn::GetAtt": [Match.any_value(), "EndpointConfigName"]},
        },
    )


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_model_serves_the_pinned_artifact_with_the_tf_serving_image(synthesized, stage):
    synth = synthesized(stage)
    model = only(synth.serving, "AWS::SageMaker::Model")["Properties"]
    container = model["PrimaryContainer"]
    region = synth.stage.serving.region
    assert container["Image"] == (f"763104351884.dkr.ecr.{region}.amazonaws.com/tensorflow-inference:2.20.0-cpu-py312")
    assert container["Environment"] == {"SAGEMAKER_TFS_DEFAULT_MODEL_NAME": "universal-sentence-encoder"}
    url = container["ModelDataUrl"]["Fn::Join"][1]
    assert url[0] == "s3://"
    assert url[-1] == "/artifacts/universal-sentence-encoder/4/model.tar.gz"
    (role_id,) = synth.serving.find_resources(
        "AWS::IAM::Role", {"Properties": {"Description": Match.string_like_regexp("reads the artifact it serves")}}
    )
    assert model["ExecutionRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}


def test_instance_endpoints_are_network_isolated(synthesized):
    for stage in ("staging", "prod"):
        model = only(synthesized(stage).serving, "AWS::SageMaker::Model")
        assert model["Properties"]["EnableNetworkIsolation"] is True


def test_serverless_dev_leaves_isolation_off_because_serverless_rejects_it(synthesized):
    model = only(synthesized("dev").serving, "AWS::SageMaker::Model")
    assert model["Properties"]["EnableNetworkIsolation"] is False


def test_dev_endpoint_is_serverless(synthesized):
    config = only(synthesized("dev").serving, "AWS::SageMaker::EndpointConfig")["Properties"]
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 5}
    assert "InstanceType" not in variant
    assert "KmsKeyId" not in config


def test_prod_endpoint_runs_on_instances_with_a_rotating_volume_key(synthesized):
    serving = synthesized("prod").serving
    config = only(serving, "AWS::SageMaker::EndpointConfig")["Properties"]
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == "ml.m5.xlarge"
    assert variant["InitialInstanceCount"] == 2
    assert variant["VariantName"] == "AllTraffic"
    (key_id,) = serving.find_resources(
        "AWS::KMS::Key",
        {"Properties": {"Description": "Encrypts the ML storage volumes of endpoint tfhub-serving-prod"}},
    )
    assert serving.find_resources("AWS::KMS::Key")[key_id]["Properties"]["EnableKeyRotation"] is True
    assert config["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


@pytest.mark.parametrize(
    ("instance_type", "expected"),
    [
        ("ml.m5.large", False),
        ("ml.c6i.xlarge", False),
        ("ml.m5d.large", True),
        ("ml.g4dn.xlarge", True),
        ("ml.g5.xlarge", True),
        ("ml.inf2.xlarge", False),
        # Left out by the old pattern; in EC2's instance-store table.
        ("ml.dl1.24xlarge", True),
        ("ml.p6-b200.48xlarge", True),
        ("ml.p6e-gb200.36xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.trn1.32xlarge", True),
        ("ml.p3.2xlarge", False),
        ("ml.g4ad.xlarge", True),
    ],
)
def test_instance_store_families_get_no_kms_key(instance_type, expected):
    assert has_instance_store(instance_type) is expected


def test_instance_store_type_synthesizes_without_kms_key(context, tmp_path):
    context["stages"]["staging"]["serving"]["instances"]["type"] = "ml.g5.xlarge"
    stage = synth_stage("staging", tmp_path, context)
    serving = Template.from_stack(stage.serving)
    # The one key left encrypts the alarm topic, not a volume.
    (key,) = serving.find_resources("AWS::KMS::Key").values()
    assert key["Properties"]["Description"] == "Encrypts the alarm topic of endpoint tfhub-serving-staging"
    serving.has_resource_properties("AWS::SageMaker::EndpointConfig", {"KmsKeyId": Match.absent()})
    model = only(serving, "AWS::SageMaker::Model")
    assert model["Properties"]["PrimaryContainer"]["Image"].endswith("tensorflow-inference:2.20.0-gpu-py312")


def test_uncompressed_artifact_prefix_uses_model_data_source(context, tmp_path):
    context["stages"]["staging"]["pinned_artifact"] = "artifacts/use/4/"
    stage = synth_stage("staging", tmp_path, context)
    model = only(Template.from_stack(stage.serving), "AWS::SageMaker::Model")
    container = model["Properties"]["PrimaryContainer"]
    assert "ModelDataUrl" not in container
    source = container["ModelDataSource"]["S3DataSource"]
    assert source["S3DataType"] == "S3Prefix"
    assert source["CompressionType"] == "None"
    assert source["S3Uri"]["Fn::Join"][1][-1] == "/artifacts/use/4/"


@pytest.mark.parametrize("stage", STAGES)
def test_outputs_name_endpoint_artifact_and_a_ready_invoke_command(synthesized, stage):
    synth = synthesized(stage)
    outputs = synth.serving.find_outputs("*")
    expected = {"EndpointName", "ArtifactLocation", "InvokeCommand", "DashboardUrl"}
    if stage == "dev":  # packaged on deploy
        expected |= {"TreeDigest", "PackagingJobName"}
    assert set(outputs) == expected
    command = outputs["InvokeCommand"]["Value"]
    assert command.startswith("aws sagemaker-runtime invoke-endpoint ")
    assert f"--endpoint-name tfhub-serving-{stage} " in command
    assert f"--region {synth.stage.serving.region} " in command
    assert '--body \'{"instances": ["hello world"]}\'' in command


@pytest.mark.parametrize("stage", STAGES)
def test_serving_deploys_after_storage_so_the_role_policy_exists_first(synthesized, stage):
    stage_ = synthesized(stage).stage
    assert stage_.storage in stage_.serving.dependencies


@pytest.mark.parametrize("stage", STAGES)
def test_every_sagemaker_resource_carries_the_stage_tags(synthesized, stage):
    serving = synthesized(stage).serving
    for resource_type in (
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
    ):
        tags = {t["Key"]: t["Value"] for t in only(serving, resource_type)["Properties"]["Tags"]}
        assert tags["stage"] == stage
        assert tags["project"] == "tfhub-serving"
        assert tags["cost-center"] == f"ml-{stage}"


def test_a_promoted_stage_reports_the_digest_it_was_given(context, tmp_path):
    import aws_cdk as cdk

    from stacks.compose import add_stage

    app = cdk.App(
        outdir=str(tmp_path),
        context={**context, "artifact": "artifacts/promoted/abc/", "artifact_digest": "d" * 64},
    )
    serving = Template.from_stack(add_stage(app, "prod").serving)
    outputs = serving.find_outputs("*")
    assert outputs["TreeDigest"]["Value"] == "d" * 64
    assert outputs["ArtifactLocation"]["Value"]["Fn::Join"][1][-1] == "/artifacts/promoted/abc/"
    serving.resource_count_is("Custom::TfHubPackagingJob", 0)
