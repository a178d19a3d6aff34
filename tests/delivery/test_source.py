"""Which source artifact a promotion takes: only one where nobody but the source
stage's own writers put it (its packaging jobs' folders, or promoted copies), in
its own bucket, whatever its serving stack's outputs say."""

from __future__ import annotations

import pytest

from delivery.artifacts import PromotionError
from stacks.stage.names import StageNames
from tests.delivery.world import (
    DEV,
    MODEL,
    NOW,
    REGION,
    SLS,
    StageAccess,
    keys,
    promote,
    promoted,
    serve_pinned,
    stack_with_outputs,
)


def _serving_from(dev, model_dir, bucket: str, key: str, digest: str) -> None:
    """The packaged model's files under `key` of `bucket`, and dev's outputs naming them."""
    for path in sorted(model_dir.rglob("*")):
        if path.is_file():
            dev.s3.upload_file(str(path), bucket, key + path.relative_to(model_dir).as_posix())
    dev.cloudformation.delete_stack(StackName=DEV.serving_stack)
    stack_with_outputs(
        dev.cloudformation, DEV.serving_stack, {"ArtifactLocation": f"s3://{bucket}/{key}", "TreeDigest": digest}
    )


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        # Any IAM user of the account may write there: the sample input and expected
        # output the smoke test trusts included.
        ("dev-bucket", "artifacts/manual/anything/"),
        ("dev-bucket", f"{SLS.packaging_output_prefix}0123456789ab/output/model/"),
        ("elsewhere", f"{DEV.packaging_output_prefix}0123456789ab/output/model/"),
        # Uploaded beside the model from /opt/ml/output/data, which the model may write while it is checked.
        ("dev-bucket", f"{DEV.packaging_output_prefix}0123456789ab/output/output.tar.gz"),
        ("dev-bucket", f"{DEV.packaging_output_prefix}0123456789ab/output/data/"),
        ("dev-bucket", f"{DEV.packaging_output_prefix}0123456789ab/debug-output/"),
    ],
    ids=[
        "outside the job folders",
        "another stage's job folder",
        "another bucket",
        "the job's output data archive",
        "the job's output data",
        "the job's debugger output",
    ],
)
def test_a_packaging_stage_is_promoted_only_from_its_own_job_folders(stages, packaged, bucket, key):
    dev, staging, record = stages
    dev.s3.create_bucket(Bucket="elsewhere", CreateBucketConfiguration={"LocationConstraint": REGION})
    _serving_from(dev, packaged[0], bucket, key, record["tree_digest"])
    with pytest.raises(
        PromotionError,
        match=rf"^tfhub-serving-dev-serving reports s3://{bucket}/{key} as its artifact, not its own packaging "
        rf"jobs' model artifact \(s3://dev-bucket/{DEV.packaging_output_prefix}\*/output/model/ or "
        rf"\.\.\./model\.tar\.gz\): make deploy STAGE=dev",
    ):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee", expected_digest=record["tree_digest"])
    assert keys(staging.s3, "staging-bucket") == []


def test_a_stage_serving_promoted_copies_is_promoted_only_from_the_copy_of_its_digest(stages, packaged):
    """staging verified the digest, but its outputs name other files of its bucket
    (its first deploy's pinned key, or another digest's copy): prod refuses them."""
    dev, staging, record = stages
    digest = record["tree_digest"]
    promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    source = StageAccess("staging", staging.names, staging.cloudformation, staging.s3, promoted=True)
    prod = StageAccess("prod", StageNames("tfhub-serving", "staging"), staging.cloudformation, staging.s3, model=MODEL)
    for key in ("artifacts/pinned/use/4/", promoted("e" * 64)):
        staging.cloudformation.delete_stack(StackName=staging.names.serving_stack)
        serve_pinned(staging, packaged[0], digest, key)
        with pytest.raises(
            PromotionError,
            match=rf"reports s3://staging-bucket/{key} as its artifact, not the promoted copy of {digest} in its "
            rf"bucket \(s3://staging-bucket/artifacts/promoted/{digest}/\): promote into staging first",
        ):
            promote(source, prod, lambda *a: pytest.fail("deployed"), "x", expected_digest=digest)
