"""Who may write where in a stage bucket, as IAM decides it over the synthesized policies.

The scenarios of the trust model (README, "Who can change what serves"): the
serving container cannot touch what a promotion copies, the packaging job
writes only its own job folders, only the promotion role writes promoted
copies and records and never replaces one, and nobody, an administrator of
the account included, deletes what rollbacks rely on.
"""

from __future__ import annotations

import pytest

from tests.iam_simulation import ADMIN, Account, Request

# Each test decides over a synthesized stage's policies.
pytestmark = pytest.mark.synth

ALLOWED, DENIED, NOT_GRANTED = "Allowed", "ExplicitlyDenied", "ImplicitlyDenied"
# A new object, as PutObject and CompleteMultipartUpload send it with If-None-Match: *.
NEW = {"s3:ObjectCreationOperation": "true", "s3:if-none-match": "*"}
# An overwrite: the same calls without the header.
OVERWRITE = {"s3:ObjectCreationOperation": "true"}
# CreateMultipartUpload and UploadPart: they cannot carry the header.
PART = {"s3:ObjectCreationOperation": "false"}
PROMOTED = "artifacts/promoted/" + "d" * 64 + "/model.tar.gz"
RECORD = "promotions/00000001-2026-11-26T120000Z-dddddddddddd.json"


def role(account: Account, prefix: str) -> str:
    (logical_id,) = [k for k, r in account.resources.items() if r["Type"] == "AWS::IAM::Role" and k.startswith(prefix)]
    return logical_id


@pytest.fixture(scope="module")
def dev(synthesized):
    synth = synthesized("dev")
    config = synth.stage.config
    serving = synth.serving.to_json()
    (job,) = [k for k, r in serving["Resources"].items() if r["Type"] == "Custom::TfHubPackagingJob"]
    artifact = f"artifacts/packaging/{config.job_name_prefix}-0123456789ab/output/model.tar.gz"
    account = Account(synth.storage.to_json(), serving, values={f"{job}.ArtifactKey": artifact})
    return account, config, artifact


@pytest.fixture(scope="module")
def prod(synthesized):
    synth = synthesized("prod")
    return Account(synth.storage.to_json(), synth.serving.to_json()), synth.stage.config


def test_the_serving_container_reads_its_artifact_and_writes_no_artifact(dev):
    account, config, artifact = dev
    model = role(account, "ModelRole")
    other_job = f"artifacts/packaging/{config.job_name_prefix}-ffffffffffff/output/model.tar.gz"
    assert account.decide(
        Request(model, "s3:GetObject", artifact),
        Request(model, "s3:GetObject", other_job),
        Request(model, "s3:PutObject", artifact, NEW),
        Request(model, "s3:PutObject", other_job, OVERWRITE),
        Request(model, "s3:PutObject", PROMOTED, NEW),
        Request(model, "s3:PutObject", RECORD, NEW),
    ) == [ALLOWED, NOT_GRANTED, DENIED, DENIED, DENIED, DENIED]


def test_the_packaging_job_writes_only_its_stages_job_folders(dev):
    account, config, _ = dev
    packaging = role(account, "PackagingRole")
    own = f"artifacts/packaging/{config.job_name_prefix}-0123456789ab/output/model/x"
    assert account.decide(
        Request(packaging, "s3:PutObject", own, OVERWRITE),
        Request(packaging, "s3:PutObject", "artifacts/packaging/other-stage-pkg-0123/output/model/x", OVERWRITE),
        Request(packaging, "s3:PutObject", PROMOTED, NEW),
        Request(packaging, "s3:PutObject", RECORD, NEW),
        Request(packaging, "s3:GetObject", "trainingData/train/train.csv"),
    ) == [ALLOWED, NOT_GRANTED, DENIED, DENIED, ALLOWED]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_only_the_promotion_role_writes_copies_and_records_and_only_new_ones(request, stage):
    account = request.getfixturevalue(stage)[0]
    promotion = role(account, "PromotionRole")
    assert account.decide(
        Request(promotion, "s3:PutObject", PROMOTED, NEW),
        Request(promotion, "s3:PutObject", PROMOTED, PART),
        Request(promotion, "s3:PutObject", RECORD, NEW),
        Request(promotion, "s3:PutObject", PROMOTED, OVERWRITE),
        Request(promotion, "s3:PutObject", RECORD, OVERWRITE),
        Request(promotion, "s3:DeleteObject", PROMOTED),
        Request(promotion, "s3:DeleteObject", RECORD),
        Request(promotion, "s3:DeleteObjectVersion", PROMOTED),
        Request(promotion, "s3:PutObject", "artifacts/packaging/any/output/model.tar.gz", NEW),
    ) == [ALLOWED, ALLOWED, ALLOWED, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_an_administrator_cannot_plant_or_replace_what_serves(request, stage):
    """Full access by IAM policy is not enough: the bucket's denies win (only changing
    the bucket policy itself would get round them, and CloudFormation owns it)."""
    account = request.getfixturevalue(stage)[0]
    assert account.decide(
        Request(ADMIN, "s3:PutObject", PROMOTED, NEW),
        Request(ADMIN, "s3:PutObject", RECORD, NEW),
        Request(ADMIN, "s3:PutObject", "artifacts/packaging/tfhub-serving-dev-0-pkg-0/output/model.tar.gz", NEW),
        Request(ADMIN, "s3:DeleteObject", PROMOTED),
        Request(ADMIN, "s3:DeleteObject", RECORD),
        Request(ADMIN, "s3:DeleteObjectVersion", PROMOTED),
        # A replication rule of another bucket writes with these, not PutObject.
        Request(ADMIN, "s3:ReplicateObject", PROMOTED),
        Request(ADMIN, "s3:ReplicateObject", RECORD),
        Request(ADMIN, "s3:ReplicateObject", "artifacts/packaging/tfhub-serving-dev-0-pkg-0/output/model.tar.gz"),
        Request(ADMIN, "s3:ReplicateDelete", PROMOTED),
        Request(ADMIN, "s3:ReplicateDelete", RECORD),
        # Other keys are the account's to manage, as any bucket's are.
        Request(ADMIN, "s3:PutObject", "artifacts/manual/model.tar.gz", OVERWRITE),
    ) == [DENIED] * 11 + [ALLOWED]


def test_only_cdk_destroy_of_a_stage_that_does_not_retain_data_removes_versions(dev, prod):
    account = dev[0]
    emptier = role(account, "CustomS3AutoDeleteObjectsCustomResourceProviderRole")
    assert (
        account.decide(
            Request(emptier, "s3:DeleteObjectVersion", PROMOTED),
            Request(emptier, "s3:DeleteObjectVersion", RECORD),
            Request(emptier, "s3:DeleteObject", RECORD),
        )
        == [ALLOWED] * 3
    )
    prod_account = prod[0]
    assert not [r for r in prod_account.resources if r.startswith("CustomS3AutoDeleteObjects")]
    assert prod_account.decide(Request(ADMIN, "s3:DeleteObjectVersion", RECORD)) == [DENIED]
