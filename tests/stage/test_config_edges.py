"""Values that once passed silently or crashed: each now fails synth in one line."""

from __future__ import annotations

import pytest

from tests.stage.test_config import assert_error, load

NEWLINE = "\n"


@pytest.mark.parametrize("account", ["１２３４５６７８９０１２", "١٢٣٤٥٦٧٨٩٠١٢", "123456789012\n"])
def test_an_account_is_twelve_ascii_digits_and_nothing_after(context, account):
    context["stages"]["staging"]["account"] = account
    assert_error(context, "staging", "stages.staging.account", "12-digit")


@pytest.mark.parametrize("name", ["1dev", "Dev", "dev\n", "dev--x", "a" * 21, "qa_1"])
def test_a_stage_name_starts_with_a_letter_and_names_stacks_safely(context, name):
    context["stages"][name] = context["stages"].pop("dev")
    assert_error(context, "staging", "stages: stage name", repr(name), "start with a lowercase letter")


@pytest.mark.parametrize(
    ("where", "edit", "fragment"),
    [
        ("model name", lambda s: s["model"].update(name="use" + NEWLINE), "stages.dev.model.name"),
        ("tag key", lambda s: s.update(tags={"team" + NEWLINE: "ml"}), "stages.dev.tags"),
        ("tag value", lambda s: s.update(tags={"team": "ml" + NEWLINE}), "stages.dev.tags.team"),
        (
            "promoter",
            lambda s: s.update(promoters=["arn:aws:iam::111111111111:role/ci" + NEWLINE]),
            "stages.dev.promoters",
        ),
        ("hub pin", lambda s: s["model"].update(hub_sha256="a" * 64 + NEWLINE), "stages.dev.model.hub_sha256"),
        (
            "hub handle",
            lambda s: s["model"].update(hub_handle=s["model"]["hub_handle"] + NEWLINE),
            "stages.dev.model.hub_handle",
        ),
        (
            "signature",
            lambda s: s["packaging"].update(signature="serving_default" + NEWLINE),
            "stages.dev.packaging.signature",
        ),
        (
            "KMS key",
            lambda s: s["packaging"].update(
                volume_kms_key_arn="arn:aws:kms:us-east-1:111111111111:key/" + "1" * 36 + NEWLINE
            ),
            "stages.dev.packaging.volume_kms_key_arn",
        ),
    ],
)
def test_a_trailing_newline_is_never_part_of_a_valid_value(context, where, edit, fragment):
    edit(context["stages"]["dev"])
    assert_error(context, "dev", fragment)


def test_an_alarm_email_with_a_trailing_newline_is_refused(context):
    context["stages"]["prod"]["alarms"]["emails"] = ["oncall@example.com\n"]
    assert_error(context, "prod", "stages.prod.alarms.emails")


def test_at_most_48_tags_beside_project_and_stage(context):
    context["stages"]["dev"]["tags"] = {f"t{i}": "x" for i in range(48)}
    assert len(load(context, "dev").resource_tags) == 50
    context["stages"]["dev"]["tags"]["t48"] = "x"
    assert_error(context, "dev", "stages.dev.tags: 49 tags are not allowed", "at most 48")


@pytest.mark.parametrize("key", ["stage", "project"])
def test_a_user_tag_never_overrides_a_built_in_one(context, key):
    context["stages"]["dev"]["tags"] = {key: "mine"}
    assert_error(context, "dev", f"key {key!r} is not allowed", "the project sets it")


def test_a_volume_key_must_be_in_the_stages_region(context):
    context["stages"]["dev"]["packaging"]["volume_kms_key_arn"] = "arn:aws:kms:eu-west-1:111111111111:key/" + "1" * 36
    message = assert_error(context, "dev", "volume_kms_key_arn", "the key is in eu-west-1, the stage in us-east-1")
    # dev's region is null in cdk.json here: the message says where us-east-1 came from.
    assert "us-east-1 (it came from the environment by the region rule" in message
    context["stages"]["dev"]["region"] = "us-east-1"
    assert "environment" not in assert_error(context, "dev", "the key is in eu-west-1, the stage in us-east-1")


def test_a_non_string_artifact_digest_is_one_line(context):
    assert_error(context, "staging", "artifact_digest: 123", artifact="artifacts/x/model.tar.gz", artifact_digest=123)


def test_a_hub_handle_longer_than_a_hyperparameter_fails_at_synth(context):
    context["stages"]["dev"]["model"]["hub_handle"] = "https://hub.example/" + "m" * 2500
    assert_error(context, "dev", "stages.dev.model.hub_handle", "hyperparameter-length")
