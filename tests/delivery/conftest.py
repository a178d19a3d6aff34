"""The promotion tests' fixtures: a packaged model, dev and staging in moto, a serverless dev."""

from __future__ import annotations

import pathlib
from typing import Any

import boto3
import pytest
from moto import mock_aws

from delivery.deployed import DeployedStage
from fixtures.demo_model import save_text_model
from packaging_job.packager.package import package
from stacks.stage.config import load_from_cdk_json
from stacks.stage.names import StageNames
from stacks.stage.schema import StageConfig
from tests.conftest import ROOT
from tests.delivery import shape_variants
from tests.delivery.world import (
    ARCHIVE_KEY,
    DEV,
    DEV_ACCOUNT,
    JOB_PREFIX,
    MODEL,
    REGION,
    SLS,
    STAGING_ACCOUNT,
    StageAccess,
    session,
    stack_with_outputs,
    upload_archive,
)


@pytest.fixture(scope="session")
def variants(tmp_path_factory) -> dict[str, tuple[dict[str, Any], StageConfig]]:
    """Each promoted-stage variant's serving template (`shape_variants.VARIANTS`) and
    the config it was synthesized from, synthesized once."""
    return shape_variants.synthesize(tmp_path_factory)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> tuple[pathlib.Path, dict]:
    work = tmp_path_factory.mktemp("artifact")
    model = save_text_model(str(work / "src" / "model"))
    record = package(model, str(work / "model"), "use", 4, log=lambda m: None)
    return work / "model", record


@pytest.fixture(scope="session")
def packaged_as_configured(tmp_path_factory) -> tuple[pathlib.Path, dict]:
    """The packaged model under the name and version cdk.json's stages serve, for the
    tests that run the make targets on the real config (an instance stage's Model reads
    only that folder, so a promotion refuses any other)."""
    model = load_from_cdk_json(ROOT / "cdk.json", "staging", {}).model
    work = tmp_path_factory.mktemp("configured")
    source = save_text_model(str(work / "src" / "model"))
    record = package(source, str(work / "model"), model.name, model.version, log=lambda m: None)
    return work / "model", record


@pytest.fixture
def stages(packaged):
    model_dir, record = packaged
    with mock_aws():
        dev, staging = session(DEV_ACCOUNT), session(STAGING_ACCOUNT)
        dev_s3, staging_s3 = dev.client("s3"), staging.client("s3")
        for s3, bucket in ((dev_s3, "dev-bucket"), (staging_s3, "staging-bucket")):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                dev_s3.upload_file(str(path), "dev-bucket", JOB_PREFIX + path.relative_to(model_dir).as_posix())
        # dev's storage stack: a promotion finds dev's bucket by its export.
        stack_with_outputs(dev.client("cloudformation"), DEV.storage_stack, {}, {DEV.bucket_name_export: "dev-bucket"})
        stack_with_outputs(
            dev.client("cloudformation"),
            "tfhub-serving-dev-serving",
            {"ArtifactLocation": f"s3://dev-bucket/{JOB_PREFIX}", "TreeDigest": record["tree_digest"]},
        )
        stack_with_outputs(
            staging.client("cloudformation"),
            "tfhub-serving-staging-storage",
            {},
            {
                "tfhub-serving-staging-bucket-name": "staging-bucket",
                "tfhub-serving-staging-promotion-role-arn": f"arn:aws:iam::{STAGING_ACCOUNT}:role/promotion",
            },
        )
        yield (
            StageAccess("dev", DEV, dev.client("cloudformation"), dev_s3),
            StageAccess(
                "staging",
                StageNames("tfhub-serving", "staging"),
                staging.client("cloudformation"),
                staging_s3,
                model=MODEL,
            ),
            record,
        )


@pytest.fixture
def serverless_dev(stages, packaged):
    """dev serving serverless: its artifact is the packaging job's model.tar.gz."""
    dev, staging, record = stages
    upload_archive(dev.s3, "dev-bucket", ARCHIVE_KEY, packaged[0])
    # Its bucket is dev's: two stages in one account and bucket, as far as a promotion can tell.
    stack_with_outputs(dev.cloudformation, SLS.storage_stack, {}, {SLS.bucket_name_export: "dev-bucket"})
    stack_with_outputs(
        dev.cloudformation,
        "tfhub-serving-sls-serving",
        {"ArtifactLocation": f"s3://dev-bucket/{ARCHIVE_KEY}", "TreeDigest": record["tree_digest"]},
    )
    return StageAccess("sls", SLS, dev.cloudformation, dev.s3, serverless_memory_mb=3072)


@pytest.fixture
def staging():
    """staging of the real cdk.json, reached in moto (nothing deployed)."""
    with mock_aws():
        config = load_from_cdk_json(ROOT / "cdk.json", "staging", {})
        session = boto3.session.Session(region_name=config.region, aws_access_key_id="x", aws_secret_access_key="x")
        yield DeployedStage(config, session)
