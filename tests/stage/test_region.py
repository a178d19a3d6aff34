"""The region rule: cdk.json's region, else for dev the region the CDK CLI would pick."""

from __future__ import annotations

import pytest

from stacks.stage.region import CDK_CLI_DEFAULT_REGION, environment_region


@pytest.fixture
def home(tmp_path):
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text(
        "[default]\nregion = eu-west-1\n\n[profile work]\nregion = ap-south-1\n\n[profile bare]\noutput = json\n"
    )
    return str(tmp_path)


@pytest.mark.parametrize(
    "variables, region",
    [
        ({"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-central-1"}, "us-west-2"),
        ({"AMAZON_REGION": "sa-east-1", "AWS_DEFAULT_REGION": "eu-central-1"}, "sa-east-1"),
        ({"AWS_DEFAULT_REGION": "eu-central-1", "AWS_PROFILE": "work"}, "eu-central-1"),
        ({"AWS_PROFILE": "work"}, "ap-south-1"),
        ({"AWS_DEFAULT_PROFILE": "work"}, "ap-south-1"),
        ({}, "eu-west-1"),
        # A profile without a region falls back to the default profile's, as the CLI does.
        ({"AWS_PROFILE": "bare"}, "eu-west-1"),
        # A profile this machine lacks is no error here: synth must work offline.
        ({"AWS_PROFILE": "gone"}, "eu-west-1"),
    ],
)
def test_the_cdk_clis_order(home, variables, region):
    assert environment_region({"HOME": home, **variables}) == region


def test_nothing_configured_is_the_clis_default(tmp_path):
    assert environment_region({"HOME": str(tmp_path)}) == CDK_CLI_DEFAULT_REGION == "us-east-1"


def test_aws_config_file_names_another_file(tmp_path):
    other = tmp_path / "elsewhere.ini"
    other.write_text("[profile ci]\nregion = ca-central-1\n")
    assert (
        environment_region({"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(other), "AWS_PROFILE": "ci"})
        == "ca-central-1"
    )


def test_an_unreadable_config_file_is_ignored(tmp_path):
    broken = tmp_path / "config"
    broken.write_text("region = nowhere\n[")
    assert environment_region({"AWS_CONFIG_FILE": str(broken)}) == CDK_CLI_DEFAULT_REGION


def test_the_credentials_file_names_a_region_before_the_config_file(home, tmp_path):
    (tmp_path / ".aws" / "credentials").write_text("[work]\nregion = sa-east-1\n")
    assert environment_region({"HOME": home, "AWS_PROFILE": "work"}) == "sa-east-1"


def test_aws_profile_wins_over_aws_default_profile_as_in_the_cdk_cli(home):
    assert environment_region({"HOME": home, "AWS_PROFILE": "work", "AWS_DEFAULT_PROFILE": "bare"}) == "ap-south-1"


def test_no_home_reads_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[default]\nregion = eu-west-3\n")
    assert environment_region({}) == CDK_CLI_DEFAULT_REGION
