"""Stage configuration: every bad value fails with one line naming key, value and what is allowed."""

from __future__ import annotations

import json

import pytest

from stacks.stage.config import load_from_cdk_json, load_stage_config
from stacks.stage.images import SERVING_TF_VERSION, TRAINING_TF_VERSION
from stacks.stage.schema import ConfigError, InstanceServing, ServerlessServing
from tests.conftest import STAGES


def load(context, stage="dev", **kwargs):
    kwargs.setdefault("default_region", "us-east-1")
    return load_stage_config(context, stage, **kwargs)


def assert_error(context, stage, *fragments, **kwargs):
    with pytest.raises(ConfigError) as caught:
        load(context, stage, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("stage", STAGES)
def test_every_declared_stage_loads(context, stage):
    config = load(context, stage)
    assert config.stage == stage
    assert config.endpoint_name == f"{context['project']}-{stage}"


def test_dev_defaults_are_the_seed_model_on_serverless(context):
    config = load(context, "dev")
    assert config.model.name == "universal-sentence-encoder"
    assert config.model.version == 4
    assert config.model.hub_handle.endswith("google/universal-sentence-encoder/4")
    assert isinstance(config.serving, ServerlessServing)
    assert not config.retain_data


def test_prod_serves_on_instances_and_retains_data(context):
    config = load(context, "prod")
    assert isinstance(config.serving, InstanceServing)
    assert config.serving.instance_type.startswith("ml.")
    assert config.retain_data


def test_config_is_frozen(context):
    config = load(context, "dev")
    with pytest.raises(AttributeError):
        config.stage = "prod"


def test_unknown_stage_names_the_declared_ones(context):
    assert_error(context, "qa", "stage", "'qa'", "dev, prod, staging")


def test_instance_type_needs_the_ml_prefix(context):
    context["stages"]["prod"]["serving"]["instances"]["type"] = "m5.large"
    assert_error(context, "prod", "stages.prod.serving.instances.type", "'m5.large'", "starts with 'ml.'")


SERVING_TYPE = "stages.staging.serving.instances.type"
PACKAGING_TYPE = "stages.dev.packaging.instance_type"
NO_SERVING_IMAGE = f"TF Serving image {SERVING_TF_VERSION} has no build"
NO_TRAINING_IMAGE = f"training image {TRAINING_TF_VERSION} has no build"


def set_instance_type(context, key, instance_type):
    if key == SERVING_TYPE:
        context["stages"]["staging"]["serving"]["instances"]["type"] = instance_type
    else:
        context["stages"]["dev"]["packaging"]["instance_type"] = instance_type


@pytest.mark.parametrize(
    ("key", "instance_type", "fragments"),
    [
        # Offered for the purpose, but the SDK has no build of the pinned image for them.
        (SERVING_TYPE, "ml.inf2.xlarge", [NO_SERVING_IMAGE, "Unsupported processor: inf"]),
        (SERVING_TYPE, "ml.trn1.2xlarge", [NO_SERVING_IMAGE, "Unsupported framework"]),
        # Arm, whether or not the SDK's table knows the family.
        (SERVING_TYPE, "ml.c7g.xlarge", ["ml.c7g runs on Arm", f"TF Serving image {SERVING_TF_VERSION} is an x86"]),
        (SERVING_TYPE, "ml.c8g.xlarge", ["ml.c8g runs on Arm", f"TF Serving image {SERVING_TF_VERSION} is an x86"]),
        (SERVING_TYPE, "ml.p6e-gb200.36xlarge", ["ml.p6e-gb200 runs on Arm"]),
        (
            PACKAGING_TYPE,
            "ml.p6e-gb200.36xlarge",
            ["ml.p6e-gb200 runs on Arm", f"training image {TRAINING_TF_VERSION} is an x86"],
        ),
        (PACKAGING_TYPE, "ml.trn1.2xlarge", [NO_TRAINING_IMAGE, "Unsupported framework"]),
        # Not offered for the purpose at all.
        (SERVING_TYPE, "ml.c5n.xlarge", ["offered only for training jobs", "SageMaker rule endpoint-instance-type"]),
        (SERVING_TYPE, "ml.m5.huge", ["ml.m5 is offered as large, xlarge", "SageMaker rule endpoint-instance-type"]),
        (
            PACKAGING_TYPE,
            "ml.inf2.xlarge",
            ["offered only for real-time endpoints", "SageMaker rule training-instance-type"],
        ),
    ],
)
def test_an_instance_type_sagemaker_or_the_pinned_image_lacks_fails_in_one_line(context, key, instance_type, fragments):
    set_instance_type(context, key, instance_type)
    stage = key.split(".")[1]
    message = assert_error(context, stage, f"{key}: {instance_type!r} is not allowed", *fragments)
    if "has no build" in message or "runs on Arm" in message:
        assert "use a CPU type (ml.m5, ml.c5 ...) or a GPU type (ml.g5 ...)" in message


@pytest.mark.parametrize(
    ("key", "instance_type"),
    [
        (SERVING_TYPE, "ml.c5.xlarge"),
        (SERVING_TYPE, "ml.g5.xlarge"),
        (PACKAGING_TYPE, "ml.c5n.xlarge"),
        (PACKAGING_TYPE, "ml.g5.xlarge"),
    ],
)
def test_cpu_and_gpu_types_sagemaker_offers_load(context, key, instance_type):
    set_instance_type(context, key, instance_type)
    config = load(context, key.split(".")[1])
    chosen = config.instance_type if key == SERVING_TYPE else config.packaging.instance_type
    assert chosen == instance_type


def test_the_command_line_tools_leave_the_image_lookup_to_synth(context, tmp_path):
    """They read stages synth has checked; the SDK's import costs seconds."""
    set_instance_type(context, SERVING_TYPE, "ml.inf2.xlarge")
    (tmp_path / "cdk.json").write_text(json.dumps({"context": context}))
    assert load_from_cdk_json(tmp_path / "cdk.json", "staging", {}).instance_type == "ml.inf2.xlarge"


@pytest.mark.parametrize("memory", [1000, 512, 7168, 2048.5])
def test_serverless_memory_must_be_on_the_1024_grid(context, memory):
    context["stages"]["dev"]["serving"]["serverless"]["memory_mb"] = memory
    assert_error(
        context,
        "dev",
        "stages.dev.serving.serverless.memory_mb",
        repr(memory),
    )


def test_serverless_memory_error_lists_the_grid(context):
    context["stages"]["dev"]["serving"]["serverless"]["memory_mb"] = 1000
    assert_error(context, "dev", "1024, 2048, 3072, 4096, 5120, 6144")


@pytest.mark.parametrize("concurrency", [0, 201])
def test_serverless_concurrency_names_its_rule(context, concurrency):
    context["stages"]["dev"]["serving"]["serverless"]["max_concurrency"] = concurrency
    assert_error(
        context,
        "dev",
        f"stages.dev.serving.serverless.max_concurrency: {concurrency} is not allowed",
        "from 1 to 200",
        "SageMaker rule serverless-limits",
    )


@pytest.mark.parametrize("count", ["two", "2", 1.5, True, 0, None])
def test_instance_count_must_be_a_whole_number(context, count):
    context["stages"]["prod"]["serving"]["instances"]["count"] = count
    assert_error(context, "prod", "stages.prod.serving.instances.count", repr(count), "whole number from 1")


@pytest.mark.parametrize("account", ["12345", "12345678901a", 123456789012])
def test_account_must_be_twelve_digits(context, account):
    context["stages"]["staging"]["account"] = account
    assert_error(context, "staging", "stages.staging.account", repr(account), "12-digit")


def test_unknown_region_lists_the_supported_ones(context):
    context["stages"]["prod"]["region"] = "eu-west-9"
    message = assert_error(context, "prod", "stages.prod.region", "'eu-west-9'", "af-south-1")
    assert "us-east-1" in message


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ((), "stages.dev.colour"),
        (("model",), "stages.dev.model.colour"),
        (("serving",), "stages.dev.serving.colour"),
        (("serving", "serverless"), "stages.dev.serving.serverless.colour"),
    ],
)
def test_unknown_keys_are_rejected_where_they_stand(context, path, where):
    node = context["stages"]["dev"]
    for key in path:
        node = node[key]
    node["colour"] = "blue"
    assert_error(context, "dev", where, "unknown key", "allowed:")


def test_serving_needs_exactly_one_mode(context):
    context["stages"]["dev"]["serving"]["instances"] = {"type": "ml.m5.large", "count": 1}
    assert_error(context, "dev", "stages.dev.serving", "exactly one of 'instances' or 'serverless'")


def test_removal_policy_is_destroy_or_retain(context):
    context["stages"]["dev"]["removal_policy"] = "snapshot"
    assert_error(context, "dev", "stages.dev.removal_policy", "'snapshot'", "destroy, retain")


def test_pinned_artifact_must_be_an_archive_or_prefix_under_artifacts(context):
    context["stages"]["staging"]["pinned_artifact"] = "models/use.zip"
    assert_error(context, "staging", "stages.staging.pinned_artifact", "'models/use.zip'", "'.tar.gz'")
    context["stages"]["staging"]["pinned_artifact"] = "artifacts/use/4/model.zip"
    assert_error(
        context,
        "staging",
        "stages.staging.pinned_artifact: 'artifacts/use/4/model.zip' is not allowed",
        "SageMaker rule model-data-url-tar-gz",
    )


def test_a_stage_packages_on_deploy_or_serves_a_pinned_artifact_not_both(context):
    context["stages"]["dev"]["pinned_artifact"] = "artifacts/use/4/model.tar.gz"
    assert_error(context, "dev", "stages.dev", "exactly one of 'packaging'")
    del context["stages"]["staging"]["pinned_artifact"]
    assert_error(context, "staging", "stages.staging", "exactly one of 'packaging'")


def test_dev_packages_the_seed_model_on_deploy(context):
    packaging = load(context, "dev").packaging
    assert packaging.instance_type == "ml.m5.xlarge"
    assert packaging.sample_input == ["hello world"]
    assert packaging.budget_minutes == packaging.max_runtime_minutes
    assert load(context, "prod").packaging is None


def test_packaging_runtime_must_fit_cloudformations_hour(context):
    context["stages"]["dev"]["packaging"]["max_runtime_minutes"] = 50
    assert_error(
        context,
        "dev",
        "stages.dev.packaging.max_runtime_minutes: 50 is not allowed; expected a whole number from 1 to 40",
        "CloudFormation's 60-minute limit",
    )


def test_spot_wait_must_cover_the_runtime_and_fit_the_hour(context):
    context["stages"]["dev"]["packaging"]["spot_max_wait_minutes"] = 10
    assert_error(
        context, "dev", "stages.dev.packaging.spot_max_wait_minutes: 10", "from 30 to 40", "SageMaker rule spot-wait"
    )
    context["stages"]["dev"]["packaging"]["spot_max_wait_minutes"] = 45
    assert_error(context, "dev", "stages.dev.packaging.spot_max_wait_minutes: 45", "from max_runtime_minutes to 40")
    context["stages"]["dev"]["packaging"]["spot_max_wait_minutes"] = 40
    assert load(context, "dev").packaging.budget_minutes == 40


def test_packaging_rejects_a_bad_key_arn_and_unknown_keys(context):
    context["stages"]["dev"]["packaging"]["volume_kms_key_arn"] = "alias/mine"
    assert_error(context, "dev", "stages.dev.packaging.volume_kms_key_arn", "'alias/mine'", "KMS key ARN")
    del context["stages"]["dev"]["packaging"]["volume_kms_key_arn"]
    context["stages"]["dev"]["packaging"]["gpu"] = True
    assert_error(context, "dev", "stages.dev.packaging.gpu", "unknown key")


def test_model_name_must_fit_tf_serving_and_sagemaker(context):
    context["stages"]["dev"]["model"]["name"] = "use/4"
    assert_error(context, "dev", "stages.dev.model.name", "'use/4'")


def test_model_version_is_a_positive_integer(context):
    context["stages"]["dev"]["model"]["version"] = "latest"
    assert_error(context, "dev", "stages.dev.model.version", "'latest'", "whole number")


def test_tags_are_strings(context):
    context["stages"]["dev"]["tags"] = {"owner": 7}
    assert_error(context, "dev", "stages.dev.tags.owner", "7")
