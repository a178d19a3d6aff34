"""Promotion across accounts against moto: copy, verify, deploy pinned, record; and every refusal."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest
from moto import mock_aws

from delivery import artifacts, records
from delivery import promote as promotion
from delivery.artifacts import PromotionError
from stacks.stage.names import StageNames
from tests.delivery.world import (
    JOB_PREFIX,
    MODEL,
    NOW,
    StageAccess,
    fails,
    keys,
    only_listed_files,
    passes,
    promote,
    promoted,
    stack_with_outputs,
)
from tools.cli import UserError


def test_promotion_copies_verifies_deploys_pinned_and_records(stages):
    dev, staging, packaged_record = stages
    deployed = []
    record = promote(
        dev,
        staging,
        lambda stage, key, digest, assembly=None: deployed.append((stage, key, digest)),
        "c0ffee",
        lambda: NOW,
    )

    digest = packaged_record["tree_digest"]
    prefix = promoted(digest)
    assert deployed == [("staging", prefix, digest)]
    copied = keys(staging.s3, "staging-bucket", prefix)
    source = keys(dev.s3, "dev-bucket", JOB_PREFIX)
    assert [k[len(prefix) :] for k in copied] == [k[len(JOB_PREFIX) :] for k in source]
    assert "manifest.json" in [k[len(prefix) :] for k in copied]
    # The copy is byte for byte the source: re-hashing it gives the same digest.
    artifacts.verify(staging.s3, f"s3://staging-bucket/{prefix}", digest)
    assert (
        record
        == {
            "source_stage": "dev",
            "source_artifact": f"s3://dev-bucket/{JOB_PREFIX}",
            "digest": digest,
            "target_stage": "staging",
            "target_artifact": f"s3://staging-bucket/{prefix}",
            "replaced": None,  # staging served nothing before
            "assembly": None,  # the deploy kept none
            "time": "2026-11-25T12:00:00+00:00",
            "commit": "c0ffee",
            "smoke": {"passed": True, **passes("staging")},
            "started": f"promotions/00000001-2026-11-25T120000Z-{digest[:12]}.json",
            "previous": f"promotions/00000001-2026-11-25T120000Z-{digest[:12]}.json",
            "record": f"promotions/00000002-2026-11-25T120000Z-{digest[:12]}.json",
        }
    )
    # An append-only log: the deploy's two records, each its own object, no mutable
    # "latest" pointer beside them; the first written before the deploy.
    assert keys(staging.s3, "staging-bucket", "promotions/") == [record["started"], record["record"]]
    assert records.require(staging.s3, "staging-bucket", record["started"])["deploy"] == "started"


def test_a_tampered_source_file_is_never_written_and_a_rerun_completes_the_copy(stages, packaged):
    """Promoted copies are never deleted, so nothing wrong may be written: a source
    file that is not its manifest's is refused before its upload completes, the
    files before it are kept (each as listed), and the copy has no manifest until
    a promotion of the intact source completes it."""
    dev, staging, record = stages
    staging.s3.put_bucket_versioning(Bucket="staging-bucket", VersioningConfiguration={"Status": "Enabled"})
    tampered = f"{JOB_PREFIX}use/4/variables/variables.index"
    original = dev.s3.get_object(Bucket="dev-bucket", Key=tampered)["Body"].read()
    dev.s3.put_object(Bucket="dev-bucket", Key=tampered, Body=b"tampered")
    deployed = []
    with pytest.raises(PromotionError, match=r"use/4/variables/variables.index of s3://dev-bucket/.* is not the file"):
        promote(dev, staging, lambda *a: deployed.append(a[:3]), "c0ffee", lambda: NOW)
    assert deployed == []
    prefix = promoted(record["tree_digest"])
    written = only_listed_files(staging.s3, "staging-bucket", prefix, record)
    assert written and "use/4/variables/variables.index" not in written
    dev.s3.put_object(Bucket="dev-bucket", Key=tampered, Body=original)
    promote(dev, staging, lambda *a: deployed.append(a[:3]), "c0ffee", lambda: NOW)
    assert deployed == [("staging", prefix, record["tree_digest"])]
    for path in written:  # completed, nothing rewritten or deleted
        versions = staging.s3.list_object_versions(Bucket="staging-bucket", Prefix=prefix + path)["Versions"]
        assert len(versions) == 1


def test_a_missing_source_stack_stops_before_anything(stages):
    dev, staging, _ = stages
    dev.cloudformation.delete_stack(StackName="tfhub-serving-dev-serving")
    with pytest.raises(
        UserError,
        match=r"Stack tfhub-serving-dev-serving does not exist in eu-west-1: "
        r"that stage is not deployed there",
    ):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")
    assert keys(staging.s3, "staging-bucket") == []


def test_missing_outputs_say_which(stages):
    dev, staging, _ = stages
    stack_with_outputs(dev.cloudformation, "tfhub-serving-qa-serving", {"ArtifactLocation": "s3://dev-bucket/x/"})
    qa = StageAccess("qa", StageNames("tfhub-serving", "qa"), dev.cloudformation, dev.s3)
    with pytest.raises(PromotionError, match=r"has no TreeDigest output"):
        promote(qa, staging, lambda *a: pytest.fail("deployed"), "c0ffee")


def test_a_missing_artifact_stops_before_anything(stages):
    dev, staging, _ = stages
    for key in keys(dev.s3, "dev-bucket", JOB_PREFIX):
        dev.s3.delete_object(Bucket="dev-bucket", Key=key)
    with pytest.raises(PromotionError, match=r"No artifact at s3://dev-bucket/artifacts/packaging/"):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")
    assert keys(staging.s3, "staging-bucket") == []


def test_a_target_without_storage_is_refused(stages):
    dev, staging, _ = stages
    prod = StageAccess("prod", StageNames("tfhub-serving", "prod"), staging.cloudformation, staging.s3)
    with pytest.raises(PromotionError, match=r"No CloudFormation export tfhub-serving-prod-bucket-name"):
        promote(dev, prod, lambda *a: pytest.fail("deployed"), "c0ffee")


def test_a_source_redeployed_since_the_tested_run_is_refused(stages):
    dev, staging, _ = stages
    with pytest.raises(PromotionError, match=r"dev now serves .*, not the tested 0{64}"):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee", expected_digest="0" * 64)
    assert keys(staging.s3, "staging-bucket") == []


def test_an_unlisted_file_in_the_artifact_is_refused(stages):
    dev, staging, _ = stages
    dev.s3.put_object(Bucket="dev-bucket", Key=f"{JOB_PREFIX}use/4/extra.py", Body=b"import os")
    with pytest.raises(
        PromotionError, match=r"does not hold exactly the manifest's files: unlisted \['use/4/extra.py'\]"
    ):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")
    assert keys(staging.s3, "staging-bucket") == []


def test_promoting_again_reuses_a_verified_copy_without_rewriting_it(stages):
    dev, staging, packaged_record = stages
    promote(dev, staging, lambda *a: None, "c0ffee", lambda: NOW)
    prefix = promoted(packaged_record["tree_digest"])
    before = {
        o["Key"]: o["LastModified"]
        for o in staging.s3.list_objects_v2(Bucket="staging-bucket", Prefix=prefix)["Contents"]
    }
    # A source that can no longer be read proves nothing is copied the second time.
    for key in keys(dev.s3, "dev-bucket", JOB_PREFIX):
        if not key.endswith("manifest.json"):
            dev.s3.delete_object(Bucket="dev-bucket", Key=key)
    promote(dev, staging, lambda *a: None, "c0ffee", lambda: NOW)
    after = {
        o["Key"]: o["LastModified"]
        for o in staging.s3.list_objects_v2(Bucket="staging-bucket", Prefix=prefix)["Contents"]
    }
    assert after == before


def test_a_rerun_never_overwrites_or_deletes_a_promoted_copy_that_does_not_verify(stages):
    dev, staging, record = stages
    promote(dev, staging, lambda *a: None, "c0ffee", lambda: NOW)
    prefix = promoted(record["tree_digest"])
    staging.s3.put_object(Bucket="staging-bucket", Key=f"{prefix}stray.txt", Body=b"x")
    before = {
        o["Key"]: o["ETag"] for o in staging.s3.list_objects_v2(Bucket="staging-bucket", Prefix=prefix)["Contents"]
    }
    with pytest.raises(PromotionError, match=r"unlisted \['stray.txt'\].*left alone"):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")
    after = {
        o["Key"]: o["ETag"] for o in staging.s3.list_objects_v2(Bucket="staging-bucket", Prefix=prefix)["Contents"]
    }
    assert after == before  # every model file the endpoint was created from is still there


def test_a_promoted_copy_is_written_once(stages):
    from delivery.artifact_copy import copy, put_new
    from delivery.artifact_forms import ArtifactError

    dev, staging, record = stages
    staging.s3.put_bucket_versioning(Bucket="staging-bucket", VersioningConfiguration={"Status": "Enabled"})
    source, prefix = f"s3://dev-bucket/{JOB_PREFIX}", promoted(record["tree_digest"])
    manifest, expected = artifacts.listed_files(dev.s3, source, record["tree_digest"])
    copy(dev.s3, source, staging.s3, f"s3://staging-bucket/{prefix}", manifest, expected)
    copy(dev.s3, source, staging.s3, f"s3://staging-bucket/{prefix}", manifest, expected)  # nothing left to write
    # Conditional writes: even a copy that races a promotion never replaces an object.
    with pytest.raises(ArtifactError, match="exists already"):
        put_new(staging.s3, "staging-bucket", f"{prefix}manifest.json", io.BytesIO(b"{}"))
    for key in keys(staging.s3, "staging-bucket", prefix):
        assert len(staging.s3.list_object_versions(Bucket="staging-bucket", Prefix=key)["Versions"]) == 1
    assert artifacts.verify(staging.s3, f"s3://staging-bucket/{prefix}", record["tree_digest"])


def test_an_artifact_packaged_before_digest_version_2_is_refused(stages):
    dev, staging, _ = stages
    body = json.loads(dev.s3.get_object(Bucket="dev-bucket", Key=f"{JOB_PREFIX}manifest.json")["Body"].read())
    del body["digest_version"]
    dev.s3.put_object(Bucket="dev-bucket", Key=f"{JOB_PREFIX}manifest.json", Body=json.dumps(body))
    with pytest.raises(PromotionError, match=r"packaged before digest version 2"):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")


def test_prod_takes_only_a_digest_staging_verified(stages):
    dev, staging, record = stages
    promote(dev, staging, lambda *a: None, "one", lambda: NOW, smoke=fails)
    stack_with_outputs(
        staging.cloudformation,
        "tfhub-serving-staging-serving",
        {
            "ArtifactLocation": f"s3://staging-bucket/{promoted(record['tree_digest'])}",
            "TreeDigest": record["tree_digest"],
        },
    )
    source = StageAccess(
        "staging", StageNames("tfhub-serving", "staging"), staging.cloudformation, staging.s3, promoted=True
    )
    prod = StageAccess("prod", StageNames("tfhub-serving", "staging"), staging.cloudformation, staging.s3, model=MODEL)
    with pytest.raises(PromotionError, match="staging has no promotion of .* whose smoke test passed"):
        promote(source, prod, lambda *a: pytest.fail("deployed"), "x", expected_digest=record["tree_digest"])
    promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1))  # verified this time
    deployed = []
    promote(
        source,
        prod,
        lambda stage, key, digest, assembly=None: deployed.append(digest),
        "x",
        expected_digest=record["tree_digest"],
    )
    assert deployed == [record["tree_digest"]]


@pytest.mark.parametrize(
    "digest, message",
    [
        (None, "In CI a promotion needs DIGEST="),
        ("", "is not a tree digest"),
        ("$(touch injected)", "is not a tree digest"),
        ("A" * 64, "is not a tree digest"),
    ],
)
def test_ci_never_promotes_without_a_well_formed_digest(monkeypatch, tmp_path, digest, message):
    """Scenarios 1 and 2: an empty digest must not switch the check off, and a
    digest is data, never run; both stop before any AWS call."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(promotion, "stage_access", lambda *a, **k: pytest.fail("reached AWS"))
    argv = ["--from", "dev", "--to", "staging"] + ([] if digest is None else ["--expect-digest", digest])
    with pytest.raises(UserError, match=re.escape(message)):
        promotion.main(argv)
    assert not (tmp_path / "injected").exists()


@pytest.mark.parametrize("given", [None, ""], ids=["unset", "empty repository variable"])
def test_ci_never_looks_for_dev_in_the_targets_region(monkeypatch, given):
    """Scenario 5: dev's region is left to the environment, which in CI is the target's."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(promotion, "stage_access", lambda *a, **k: pytest.fail("reached AWS"))
    argv = ["--from", "dev", "--to", "staging", "--expect-digest", "a" * 64]
    argv += [] if given is None else ["--source-region", given]
    with pytest.raises(UserError, match=re.escape("In CI a promotion from dev needs SOURCE_REGION=<dev's region>")):
        promotion.main(argv)


def test_the_source_is_read_in_its_own_region(monkeypatch):
    """Scenario 5: dev's region comes from its environment, not the staging job's."""
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        dev = promotion.stage_access("dev", region="us-west-2")
    assert dev.cloudformation.meta.region_name == "us-west-2" and dev.promoted is False
