"""Promotion between serving forms (archive and prefix) and what the digest refuses in either."""

from __future__ import annotations

import tarfile

import pytest

from delivery import artifacts
from delivery.artifacts import PromotionError
from stacks.stage.names import StageNames
from tests.delivery.world import (
    ARCHIVE_KEY,
    JOB_PREFIX,
    NOW,
    StageAccess,
    keys,
    promote,
    promoted,
    upload_archive,
)


def test_a_serverless_stages_archive_is_unpacked_for_instances(stages, serverless_dev):
    _, staging, record = stages
    deployed = []
    promote(serverless_dev, staging, lambda *a: deployed.append(a[:3]), "c0ffee", lambda: NOW)
    prefix = promoted(record["tree_digest"])
    assert deployed == [("staging", prefix, record["tree_digest"])]
    copied = [k[len(prefix) :] for k in keys(staging.s3, "staging-bucket", prefix)]
    assert "manifest.json" in copied and "use/4/saved_model.pb" in copied
    assert not any(key.endswith("/") for key in copied)


@pytest.mark.parametrize("form", ["prefix", "archive"], ids=["instances' prefix", "serverless archive"])
def test_a_serverless_target_gets_an_archive_from_either_form(stages, serverless_dev, form):
    dev, staging, record = stages
    source = dev if form == "prefix" else serverless_dev
    target = StageAccess(
        "staging", StageNames("tfhub-serving", "staging"), staging.cloudformation, staging.s3, serverless_memory_mb=3072
    )
    deployed = []
    promote(source, target, lambda *a: deployed.append(a[:3]), "c0ffee", lambda: NOW)
    key = f"artifacts/promoted/{record['tree_digest']}/model.tar.gz"
    assert deployed == [("staging", key, record["tree_digest"])]
    assert keys(staging.s3, "staging-bucket", "artifacts/") == [key]
    assert artifacts.verify(staging.s3, f"s3://staging-bucket/{key}", record["tree_digest"])["model_name"] == "use"


def test_a_serverless_target_too_small_for_the_model_is_refused_before_the_deploy(stages):
    dev, staging, _ = stages
    # 512 MB cannot hold TF Serving and even this small model (the sizing rule).
    target = StageAccess(
        "staging", StageNames("tfhub-serving", "staging"), staging.cloudformation, staging.s3, serverless_memory_mb=512
    )
    with pytest.raises(
        PromotionError,
        match=r"staging is serverless and the packaged model is \d+ MB and a serverless "
        r"endpoint must hold it twice over",
    ):
        promote(dev, target, lambda *a: pytest.fail("deployed"), "c0ffee")


def test_an_archive_holding_a_link_is_refused(stages, serverless_dev, packaged):
    dev, staging, _ = stages
    link = tarfile.TarInfo("./use/4/assets/vocab.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    upload_archive(dev.s3, "dev-bucket", ARCHIVE_KEY, packaged[0], extra=link)
    with pytest.raises(PromotionError, match=r"holds './use/4/assets/vocab.txt', which is not a regular file"):
        promote(serverless_dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")
    assert keys(staging.s3, "staging-bucket") == []


def test_a_folder_object_in_a_prefix_is_refused(stages):
    dev, staging, _ = stages
    dev.s3.put_object(Bucket="dev-bucket", Key=f"{JOB_PREFIX}use/4/assets/", Body=b"")
    with pytest.raises(PromotionError, match=r"holds the zero-byte folder object .*use/4/assets/"):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")
    assert keys(staging.s3, "staging-bucket") == []


def test_an_added_inference_script_changes_the_digest_and_is_refused(stages):
    # code/inference.py runs in the serving container: the digest covers it.
    dev, staging, _ = stages
    dev.s3.put_object(Bucket="dev-bucket", Key=f"{JOB_PREFIX}code/inference.py", Body=b"def handler(d, c): ...")
    with pytest.raises(
        PromotionError, match=r"does not hold exactly the manifest's files: unlisted \['code/inference.py'\]"
    ):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")


def test_a_moved_version_folder_changes_what_serves_and_is_refused(stages):
    dev, staging, _ = stages
    for key in keys(dev.s3, "dev-bucket", f"{JOB_PREFIX}use/4/"):
        moved = key.replace("/use/4/", "/use/5/")
        dev.s3.copy_object(Bucket="dev-bucket", Key=moved, CopySource={"Bucket": "dev-bucket", "Key": key})
        dev.s3.delete_object(Bucket="dev-bucket", Key=key)
    with pytest.raises(PromotionError, match=r"does not hold exactly the manifest's files"):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")
