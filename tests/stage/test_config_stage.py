"""A stage's identity and inputs: account and region fallbacks, project and endpoint
names, artifacts and their digests, the hub handle and its pin, limits, promoters."""

from __future__ import annotations

import pytest

from tests.stage.test_config import assert_error, load


def test_dev_falls_back_to_the_cli_account_and_region(context):
    config = load(context, "dev", default_account="123456789012", default_region="ap-east-1")
    assert (config.account, config.region) == ("123456789012", "ap-east-1")


def test_dev_without_any_account_is_account_agnostic(context):
    assert load(context, "dev", default_account=None).account is None


def test_dev_without_any_region_says_where_to_set_it(context):
    assert_error(context, "dev", "stages.dev.region", "set it in cdk.json", default_region=None)


def test_other_stages_never_fall_back(context):
    del context["stages"]["prod"]["account"]
    assert_error(context, "prod", "stages.prod.account", "missing", default_account="123456789012")


def test_project_name_must_make_a_valid_endpoint_name(context):
    context["project"] = "tfhub_serving"
    assert_error(context, "dev", "project", "'tfhub_serving'")


@pytest.mark.parametrize("project", ["9serving", "-serving", "serving-"])
def test_project_must_start_stack_names_with_a_letter(context, project):
    context["project"] = project
    assert_error(context, "dev", "project", repr(project), "start with a letter")


def test_repeated_hyphens_are_valid_like_in_sagemaker(context):
    context["project"] = "tfhub--serving"
    assert load(context, "dev").endpoint_name == "tfhub--serving-dev"


def test_an_artifact_given_on_the_command_line_pins_the_stage(context):
    config = load(context, "staging", artifact="artifacts/promoted/abc/model/")
    assert (config.packaging, config.pinned_artifact_key) == (None, "artifacts/promoted/abc/model/")
    config = load(context, "dev", artifact="artifacts/promoted/abc/model.tar.gz")
    assert (config.packaging, config.pinned_artifact_key) == (None, "artifacts/promoted/abc/model.tar.gz")
    assert_error(context, "prod", "artifact (-c artifact=...)", "'elsewhere/x'", artifact="elsewhere/x")


def test_a_serverless_stage_cannot_serve_a_prefix(context):
    # ContainerDefinition.ModelDataSource is not for serverless endpoints.
    assert_error(
        context,
        "dev",
        "artifact (-c artifact=...)",
        "'artifacts/promoted/abc/model/'",
        "SageMaker rule serverless-model-data",
        artifact="artifacts/promoted/abc/model/",
    )
    context["stages"]["dev"].pop("packaging")
    context["stages"]["dev"]["pinned_artifact"] = "artifacts/use/4/"
    assert_error(context, "dev", "stages.dev.pinned_artifact", "'artifacts/use/4/'", "ModelDataSource")


def test_an_artifact_digest_must_be_a_sha256_with_an_artifact(context):
    assert (
        load(context, "prod", artifact="artifacts/promoted/a/", artifact_digest="f" * 64).pinned_artifact_digest
        == "f" * 64
    )
    assert_error(context, "prod", "artifact_digest", "64 hex", artifact="artifacts/promoted/a/", artifact_digest="xyz")
    assert_error(context, "prod", "artifact_digest", "together with -c artifact", artifact_digest="f" * 64)


def test_packaging_sample_and_volume_key_are_checked_against_sagemakers_limits(context):
    context["stages"]["dev"]["packaging"]["sample_input"] = ["x" * 3000]
    assert_error(
        context,
        "dev",
        "stages.dev.packaging.sample_input",
        "SageMaker rule hyperparameter-length",
        "at most 2500 characters",
    )
    context["stages"]["dev"]["packaging"]["sample_input"] = ["hello"]
    context["stages"]["dev"]["packaging"].update(
        instance_type="ml.g5.xlarge",
        volume_kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )
    assert_error(
        context, "dev", "stages.dev.packaging.volume_kms_key_arn", "ml.g5.xlarge", "SageMaker rule instance-store-kms"
    )


def test_a_serverless_stage_needs_a_region_with_serverless_inference(context):
    context["stages"]["dev"]["region"] = "il-central-1"  # has the images, not serverless inference
    assert_error(
        context, "dev", "stages.dev.region: 'il-central-1' is not allowed", "SageMaker rule serverless-regions"
    )
    context["stages"]["dev"]["serving"] = {"instances": {"type": "ml.m5.large", "count": 1}}
    assert load(context, "dev").region == "il-central-1"


@pytest.mark.parametrize("region", ["nowhere", "eu-west-1 ", "il-central-1"])
def test_a_bad_dev_region_from_the_environment_says_where_it_came_from(context, region):
    assert context["stages"]["dev"]["region"] is None
    message = assert_error(context, "dev", f"stages.dev.region: {region!r}", default_region=region)
    assert message.endswith(
        "(it came from the environment by the region rule: AWS_REGION, AWS_DEFAULT_REGION "
        "or the profile's region; cdk.json leaves stages.dev.region null)"
    )
    # A value the user wrote is blamed on cdk.json alone.
    context["stages"]["dev"]["region"] = region
    assert "environment" not in assert_error(context, "dev", f"stages.dev.region: {region!r}")


def test_a_bad_fallback_account_names_cdk_default_account(context):
    assert context["stages"]["dev"]["account"] is None
    assert_error(
        context,
        "dev",
        "stages.dev.account: '12345' (from CDK_DEFAULT_ACCOUNT; cdk.json leaves it null) is not allowed",
        default_account="12345",
    )


def test_hub_handle_and_signature_fit_a_hyperparameter(context):
    context["stages"]["dev"]["model"]["hub_handle"] = "https://example.com/" + "m" * 2500
    assert_error(context, "dev", "stages.dev.model.hub_handle", "SageMaker rule hyperparameter-length")
    context["stages"]["dev"]["model"]["hub_handle"] = "https://example.com/m"
    context["stages"]["dev"]["packaging"]["signature"] = "s" * 2600
    assert_error(context, "dev", "stages.dev.packaging.signature", "2600 characters")


def test_a_hub_archive_may_be_pinned_by_its_sha256(context):
    context["stages"]["dev"]["model"]["hub_sha256"] = "A" * 64
    assert_error(context, "dev", "stages.dev.model.hub_sha256: 'AAAA", "64 lowercase hex characters")
    context["stages"]["dev"]["model"]["hub_sha256"] = "a" * 64
    assert load(context).model.hub_sha256 == "a" * 64
    del context["stages"]["dev"]["model"]["hub_sha256"]
    assert load(context).model.hub_sha256 is None


@pytest.mark.parametrize(
    "handle",
    [
        "ftp://example.com/m.tar.gz",
        "file:///etc/passwd",
        "gopher://x/m",
        # Read as the job reads them (urlsplit), these have no scheme it takes.
        "gs:bucket/model",
        "hf:google/model",
        "s3:/bucket/x",
        "https:///no-host",
        "https://[::1/x",
        "s3://bucket",
        # A path exists on this machine, not in the SageMaker job a stage runs.
        "/opt/models/m",
        "models/m",
    ],
)
def test_a_stages_hub_handle_is_an_https_http_or_s3_url_the_job_can_reach(context, handle):
    context["stages"]["dev"]["model"]["hub_handle"] = handle
    assert_error(context, "dev", f"stages.dev.model.hub_handle: {handle!r} is not allowed", "https://")


@pytest.mark.parametrize(
    "handle", ["https://tfhub.dev/google/m/1", "http://hub.internal/m", "s3://bucket/m.tar.gz", "s3://bucket/m/"]
)
def test_https_http_and_s3_handles_load(context, handle):
    context["stages"]["dev"]["model"]["hub_handle"] = handle
    assert load(context).model.hub_handle == handle


def test_archive_limits_have_defaults_and_bounds(context):
    assert load(context).packaging.limits.files == 100_000
    context["stages"]["dev"]["packaging"]["limits"] = {"files": 50, "ratio": 20}
    limits = load(context).packaging.limits
    assert (limits.files, limits.ratio, limits.download_mb) == (50, 20, 20 * 1024)
    context["stages"]["dev"]["packaging"]["limits"] = {"ratio": 0}
    assert_error(context, "dev", "stages.dev.packaging.limits.ratio: 0 is not allowed", "from 1 to 10000")
    context["stages"]["dev"]["packaging"]["limits"] = {"size": 1}
    assert_error(
        context, "dev", "stages.dev.packaging.limits.size: unknown key", "allowed: download_mb, files, model_mb, ratio"
    )


@pytest.mark.parametrize(
    "promoters", ["arn:aws:iam::1:role/x", ["role/ci"], ["arn:aws:sts::222222222222:assumed-role/x/y"]]
)
def test_promoters_are_iam_role_or_user_arns(context, promoters):
    context["stages"]["staging"]["promoters"] = promoters
    assert_error(context, "staging", "stages.staging.promoters:", "expected a list of IAM role or user ARNs")
