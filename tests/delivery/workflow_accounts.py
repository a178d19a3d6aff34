"""The accounts the delivery workflow's jobs meet in tests: a moto server holding
every stage's account (moto's STS gives credentials in the account of the role
assumed) and its request log, each stage's GitHub environment variables, dev's
serving stack as a deploy leaves it, and a `gh` that answers for main."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import urllib.request
from collections.abc import Iterator, Mapping

import boto3

from account_setup.settings import deploy_role_name, read_role_name
from stacks.stage.names import StageNames
from tests.conftest import DEV_REGION, moto_server
from tests.delivery.world import DEV, stack_with_outputs

PROJECT = "tfhub-serving"
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
# dev's region is its environment's (cdk.json leaves it null); staging's is cdk.json's.
REGIONS = {"dev": DEV_REGION, "staging": "eu-west-1", "prod": "eu-west-1"}
# Where dev's (serverless) packaging job left its model.tar.gz.
ARCHIVE_KEY = f"{DEV.packaging_output_prefix}fedcba987654/output/model.tar.gz"


def variables(stage: str) -> dict[str, str]:
    """The stage's GitHub environment variables, as the README has users set them."""
    given = {
        "AWS_DEPLOY_ROLE_ARN": f"arn:aws:iam::{ACCOUNTS[stage]}:role/{deploy_role_name(PROJECT, stage)}",
        "AWS_ACCOUNT_ID": ACCOUNTS[stage],
        "AWS_REGION": REGIONS[stage],
    }
    if stage != "dev":
        source = {"staging": "dev", "prod": "staging"}[stage]
        given["SOURCE_READ_ROLE_ARN"] = f"arn:aws:iam::{ACCOUNTS[source]}:role/{read_role_name(PROJECT, source)}"
        given["SOURCE_REGION"] = REGIONS[source]
    return given


@dataclasses.dataclass(frozen=True)
class Moto:
    """A moto server holding every account, and its log of the requests it answered."""

    url: str
    recording: pathlib.Path

    def session(self, stage: str) -> boto3.session.Session:
        """The stage's account, as a role in it (moto's STS gives that account's credentials)."""
        credentials = boto3.client(
            "sts",
            region_name=REGIONS[stage],
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).assume_role(RoleArn=f"arn:aws:iam::{ACCOUNTS[stage]}:role/test", RoleSessionName="test")["Credentials"]
        return boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=REGIONS[stage],
        )

    def client(self, stage: str, service: str):
        return self.session(stage).client(service, endpoint_url=self.url)

    def requests(self) -> int:
        """How many AWS requests moto has answered so far."""
        return len(self.recording.read_text().splitlines()) if self.recording.exists() else 0


@contextlib.contextmanager
def recorded_moto(recording: pathlib.Path) -> Iterator[Moto]:
    """A moto server that logs each request it answers into `recording` (moto's recorder)."""
    with moto_server(MOTO_ENABLE_RECORDING="True", MOTO_RECORDER_FILEPATH=str(recording)) as url:
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/recorder/start-recording", method="POST"))
        yield Moto(url, recording)


def fresh(moto: Moto) -> None:
    """Every account emptied, then dev's and staging's storage stacks and buckets."""
    urllib.request.urlopen(urllib.request.Request(f"{moto.url}/moto-api/reset", method="POST"))
    moto.client("dev", "s3").create_bucket(Bucket="dev-bucket")
    stack_with_outputs(
        moto.client("dev", "cloudformation"), DEV.storage_stack, {}, {DEV.bucket_name_export: "dev-bucket"}
    )
    staging = StageNames(PROJECT, "staging")
    moto.client("staging", "s3").create_bucket(
        Bucket="staging-bucket", CreateBucketConfiguration={"LocationConstraint": REGIONS["staging"]}
    )
    stack_with_outputs(
        moto.client("staging", "cloudformation"),
        staging.storage_stack,
        {},
        {
            staging.bucket_name_export: "staging-bucket",
            staging.promotion_role_export: f"arn:aws:iam::{ACCOUNTS['staging']}:role/promotion",
        },
    )


def serving_in_dev(moto: Moto, outputs: Mapping[str, str]) -> None:
    """dev's serving stack as its deploy left it, reporting `outputs` beside its artifact."""
    stack_with_outputs(
        moto.client("dev", "cloudformation"),
        DEV.serving_stack,
        {"ArtifactLocation": f"s3://dev-bucket/{ARCHIVE_KEY}", **outputs},
    )


def gh_answering(tmp_path: pathlib.Path, head: str) -> dict[str, str]:
    """A `gh` on PATH that answers GitHub's "get a commit" for main as the API would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(
        "#!/bin/sh\n"
        f'[ "$*" = "api repos/$GITHUB_REPOSITORY/commits/main --jq .sha" ] && [ -n "$GH_TOKEN" ] && echo {head}\n'
    )
    (bin_dir / "gh").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
