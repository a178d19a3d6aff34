"""Promotion across accounts against moto: copy, verify, deploy pinned, record; and every refusal."""

from __future__ import annotations

import datetime as dt
import io
import json
import pathlib
import re
import tarfile

import boto3
import pytest
from moto import mock_aws

from delivery import artifacts
from delivery import promote as promotion
from delivery.artifacts import PromotionError
from fixtures.demo_model import save_text_model
from packaging_job.packager.package import package
from tools.cli import UserError


def passes(stage: str) -> dict:
    """A smoke test the deployed stage passes."""
    return {
        "endpoint": f"tfhub-serving-{stage}",
        "instances": 1,
        "latency_ms": 5.0,
        "checked_values": True,
        "problems": [],
    }


def fails(stage: str) -> dict:
    return {**passes(stage), "problems": ["output 'embedding' is 0.2, the packaged model answered 0.1"]}


def promote(*args, **kwargs):
    """A promotion whose target passes its smoke test unless a test says otherwise."""
    return promotion.promote(*args, **{"smoke": passes, **kwargs})


def rollback(*args, **kwargs):
    return promotion.rollback(*args, **{"smoke": passes, **kwargs})


StageAccess = promotion.StageAccess

DEV_ACCOUNT, STAGING_ACCOUNT = "111111111111", "222222222222"
REGION = "eu-west-1"
JOB_PREFIX = "artifacts/packaging/tfhub-serving-dev-pkg-abc/output/model/"
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> tuple[pathlib.Path, dict]:
    work = tmp_path_factory.mktemp("artifact")
    model = save_text_model(str(work / "src" / "model"))
    record = package(model, str(work / "model"), "use", 4, log=lambda m: None)
    return work / "model", record


def session(account: str):
    """Credentials of `account`, through moto's STS as a CI role assumption would."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/deploy", RoleSessionName="test"
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def stack_with_outputs(cloudformation, name: str, outputs: dict[str, str], exports: dict[str, str] | None = None):
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            **{key: {"Value": value} for key, value in outputs.items()},
            **{
                f"Export{i}": {"Value": value, "Export": {"Name": name_}}
                for i, (name_, value) in enumerate((exports or {}).items())
            },
        },
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


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
        stack_with_outputs(
            dev.client("cloudformation"),
            "tfhub-serving-dev-serving",
            {"ArtifactLocation": f"s3://dev-bucket/{JOB_PREFIX}", "TreeDigest": record["tree_digest"]},
        )
        stack_with_outputs(
            staging.client("cloudformation"),
            "tfhub-serving-staging-storage",
            {},
            {"tfhub-serving-staging-bucket-name": "staging-bucket"},
        )
        yield (
            StageAccess("dev", "tfhub-serving-dev", dev.client("cloudformation"), dev_s3),
            StageAccess("staging", "tfhub-serving-staging", staging.client("cloudformation"), staging_s3),
            record,
        )


def keys(s3, bucket, prefix=""):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def promoted(digest: str) -> str:
    return f"artifacts/promoted/{digest}/model/"


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
            "previous": None,
            "record": f"promotions/00000001-2026-11-25T120000Z-{digest[:12]}.json",
        }
    )
    # An append-only log: the record is its own object, no mutable "latest" pointer beside it.
    assert keys(staging.s3, "staging-bucket", "promotions/") == [record["record"]]


def test_a_tampered_file_is_a_digest_mismatch_and_changes_nothing(stages):
    dev, staging, _ = stages
    dev.s3.put_object(Bucket="dev-bucket", Key=f"{JOB_PREFIX}use/4/variables/variables.index", Body=b"tampered")
    deployed = []
    with pytest.raises(PromotionError, match=r"Digest mismatch at s3://staging-bucket/artifacts/promoted/"):
        promote(dev, staging, lambda *a: deployed.append(a[:3]), "c0ffee", lambda: NOW)
    assert deployed == []
    assert keys(staging.s3, "staging-bucket") == []


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
    qa = StageAccess("qa", "tfhub-serving-qa", dev.cloudformation, dev.s3)
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
    prod = StageAccess("prod", "tfhub-serving-prod", staging.cloudformation, staging.s3)
    with pytest.raises(PromotionError, match=r"No CloudFormation export tfhub-serving-prod-bucket-name"):
        promote(dev, prod, lambda *a: pytest.fail("deployed"), "c0ffee")


def test_rollback_redeploys_an_earlier_record_after_verifying_it(stages):
    dev, staging, packaged_record = stages
    first = promote(dev, staging, lambda *a: None, "c0ffee", lambda: NOW)
    deployed = []
    later = NOW + dt.timedelta(hours=1)
    record = rollback(
        staging,
        first["record"],
        lambda stage, key, digest, assembly=None: deployed.append((stage, key)),
        "beef",
        lambda: later,
    )
    assert deployed == [("staging", promoted(packaged_record["tree_digest"]))]
    assert record["rollback_to"] == first["record"]
    assert record["commit"] == "beef"
    # A damaged copy is refused rather than served.
    staging.s3.put_object(
        Bucket="staging-bucket",
        Key=f"{promoted(packaged_record['tree_digest'])}use/4/saved_model.pb",
        Body=b"broken",
    )
    with pytest.raises(PromotionError, match="Digest mismatch"):
        rollback(staging, first["record"], lambda *a: pytest.fail("deployed"), "beef")


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


def test_previous_names_the_promotion_the_latest_replaced(stages):
    dev, staging, packaged_record = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    second = promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(days=1))
    assert second["previous"] == first["record"]
    deployed = []
    back = rollback(
        staging,
        "previous",
        lambda stage, key, digest, assembly=None: deployed.append(stage),
        "three",
        lambda: NOW + dt.timedelta(days=2),
    )
    assert back["rollback_to"] == first["record"] and deployed == ["staging"]


def upload_archive(s3, bucket: str, key: str, model_dir: pathlib.Path, extra: tarfile.TarInfo | None = None) -> None:
    """The packaged model as SageMaker packs /opt/ml/model for CompressionType GZIP."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=f"./{path.relative_to(model_dir).as_posix()}")
        if extra is not None:
            archive.addfile(extra)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


@pytest.fixture
def serverless_dev(stages, packaged):
    """dev serving serverless: its artifact is the packaging job's model.tar.gz."""
    dev, staging, record = stages
    upload_archive(dev.s3, "dev-bucket", ARCHIVE_KEY, packaged[0])
    stack_with_outputs(
        dev.cloudformation,
        "tfhub-serving-sls-serving",
        {"ArtifactLocation": f"s3://dev-bucket/{ARCHIVE_KEY}", "TreeDigest": record["tree_digest"]},
    )
    return StageAccess("sls", "tfhub-serving-sls", dev.cloudformation, dev.s3, serverless_memory_mb=3072)


ARCHIVE_KEY = "artifacts/packaging/tfhub-serving-dev-pkg-def/output/model.tar.gz"


def test_a_serverless_stages_archive_is_unpacked_for_instances(stages, serverless_dev):
    _, staging, record = stages
    deployed = []
    promote(serverless_dev, staging, lambda *a: deployed.append(a[:3]), "c0ffee", lambda: NOW)
    prefix = promoted(record["tree_digest"])
    assert deployed == [("staging", prefix, record["tree_digest"])]
    copied = [k[len(prefix) :] for k in keys(staging.s3, "staging-bucket", prefix)]
    assert "manifest.json" in copied and "use/4/saved_model.pb" in copied
    assert not any(key.endswith("/") for key in copied)


def test_an_instance_stages_prefix_is_packed_for_a_serverless_target(stages, serverless_dev):
    dev, staging, record = stages
    target = StageAccess(
        "staging", "tfhub-serving-staging", staging.cloudformation, staging.s3, serverless_memory_mb=1024
    )
    deployed = []
    promote(dev, target, lambda *a: deployed.append(a[:3]), "c0ffee", lambda: NOW)
    key = f"artifacts/promoted/{record['tree_digest']}/model.tar.gz"
    assert deployed == [("staging", key, record["tree_digest"])]
    assert keys(staging.s3, "staging-bucket", "artifacts/") == [key]
    assert artifacts.verify(staging.s3, f"s3://staging-bucket/{key}", record["tree_digest"])["model_name"] == "use"


def test_a_serverless_target_too_small_for_the_model_is_refused_before_the_deploy(stages):
    dev, staging, _ = stages
    # 512 MB cannot hold TF Serving and even this small model (the sizing rule).
    target = StageAccess(
        "staging", "tfhub-serving-staging", staging.cloudformation, staging.s3, serverless_memory_mb=512
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


# --- integrity: what was tested is exactly what serves ----------------------------


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


def test_a_promoted_copy_is_written_once(stages, packaged):
    from delivery.artifact_forms import ArtifactError, copy

    dev, staging, record = stages
    target = f"s3://staging-bucket/{promoted(record['tree_digest'])}"
    copy(dev.s3, f"s3://dev-bucket/{JOB_PREFIX}", staging.s3, target)
    # Conditional writes: even a copy that races a promotion never replaces an object.
    with pytest.raises(ArtifactError, match="exists already"):
        copy(dev.s3, f"s3://dev-bucket/{JOB_PREFIX}", staging.s3, target)
    assert artifacts.verify(staging.s3, target, record["tree_digest"])


def test_previous_twice_lands_where_once_did(stages):
    dev, staging, record = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    # A second, different artifact promoted on top of it.
    second_digest = repackage(dev, "other")
    second = promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1))
    assert second["digest"] == second_digest != first["digest"]
    served = []
    for hours in (2, 3):
        rollback(
            staging,
            "previous",
            lambda stage, key, digest, assembly=None: served.append(digest),
            "back",
            lambda hours=hours: NOW + dt.timedelta(hours=hours),
        )
    assert served == [first["digest"], first["digest"]]


def repackage(dev, model_name: str) -> str:
    """Put another packaged model where dev's stack points; return its digest."""
    import tempfile

    from fixtures.demo_model import save_text_model

    work = pathlib.Path(tempfile.mkdtemp())
    model = save_text_model(str(work / "src" / "model"), seed=7)
    new = package(model, str(work / "model"), "use", 4, log=lambda m: None)
    for key in keys(dev.s3, "dev-bucket", JOB_PREFIX):
        dev.s3.delete_object(Bucket="dev-bucket", Key=key)
    for path in sorted((work / "model").rglob("*")):
        if path.is_file():
            dev.s3.upload_file(str(path), "dev-bucket", JOB_PREFIX + path.relative_to(work / "model").as_posix())
    dev.cloudformation.delete_stack(StackName="tfhub-serving-dev-serving")
    stack_with_outputs(
        dev.cloudformation,
        "tfhub-serving-dev-serving",
        {"ArtifactLocation": f"s3://dev-bucket/{JOB_PREFIX}", "TreeDigest": new["tree_digest"]},
    )
    return new["tree_digest"]


def test_a_planted_record_cannot_choose_what_a_rollback_serves(stages):
    dev, staging, record = stages
    promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    # Someone who can write promotions/ points latest at an artifact no promotion verified.
    staging.s3.put_object(Bucket="staging-bucket", Key="artifacts/evil/model.tar.gz", Body=b"x")
    planted = {
        "digest": record["tree_digest"],
        "target_stage": "staging",
        "record": "promotions/planted.json",
        "target_artifact": "s3://staging-bucket/artifacts/evil/model.tar.gz",
        "previous": None,
    }
    staging.s3.put_object(Bucket="staging-bucket", Key="promotions/planted.json", Body=json.dumps(planted))
    with pytest.raises(PromotionError, match=r"does not name a promoted copy of stage staging"):
        rollback(staging, "promotions/planted.json", lambda *a: pytest.fail("deployed"), "x")


def test_a_record_whose_digest_does_not_match_its_copy_is_refused(stages):
    dev, staging, record = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    forged = {
        **first,
        "digest": "f" * 64,
        "target_artifact": f"s3://staging-bucket/{promoted('f' * 64)}",
        "record": "promotions/forged.json",
    }
    staging.s3.put_object(Bucket="staging-bucket", Key="promotions/forged.json", Body=json.dumps(forged))
    with pytest.raises(PromotionError, match=r"No artifact at s3://staging-bucket/artifacts/promoted/f{64}/model/"):
        rollback(staging, "promotions/forged.json", lambda *a: pytest.fail("deployed"), "x")


def test_an_artifact_packaged_before_digest_version_2_is_refused(stages):
    dev, staging, _ = stages
    body = json.loads(dev.s3.get_object(Bucket="dev-bucket", Key=f"{JOB_PREFIX}manifest.json")["Body"].read())
    del body["digest_version"]
    dev.s3.put_object(Bucket="dev-bucket", Key=f"{JOB_PREFIX}manifest.json", Body=json.dumps(body))
    with pytest.raises(PromotionError, match=r"packaged before digest version 2"):
        promote(dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")


def test_a_failure_to_list_the_records_stops_rather_than_cutting_the_chain():
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    from delivery import records

    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(s3) as stub:
        stub.add_client_error("list_objects_v2", service_error_code="SlowDown", http_status_code=503)
        with pytest.raises(ClientError, match="SlowDown"):
            records.write(s3, "staging-bucket", {"time": "t", "digest": "d" * 64})


def test_records_are_numbered_in_order_and_a_racing_writer_takes_the_next_number(stages):
    from delivery import records

    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    # Another promotion wrote number 2 between this one's listing and its write.
    real_put = staging.s3.put_object

    def racing_put(**kwargs):
        if kwargs["Key"].startswith("promotions/00000002-"):
            staging.s3.put_object = real_put
            raced = {**first, "record": kwargs["Key"], "previous": first["record"]}
            real_put(Bucket="staging-bucket", Key=kwargs["Key"], Body=json.dumps(raced))
        return real_put(**kwargs)

    staging.s3.put_object = racing_put
    try:
        third = promote(dev, staging, lambda *a: None, "three", lambda: NOW)
    finally:
        staging.s3.put_object = real_put
    assert third["record"].startswith("promotions/00000003-")
    assert third["previous"].startswith("promotions/00000002-")
    assert records.newest(staging.s3, "staging-bucket") == third["record"]


def test_a_record_that_is_not_what_the_log_wrote_there_is_refused(stages):
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    # A copy of a genuine record under another key: its content names its real place.
    body = staging.s3.get_object(Bucket="staging-bucket", Key=first["record"])["Body"].read()
    staging.s3.put_object(Bucket="staging-bucket", Key="promotions/00000009-copy.json", Body=body)
    with pytest.raises(PromotionError, match=r"00000009-copy.json is not a promotion record this tool wrote"):
        rollback(staging, "previous", lambda *a: pytest.fail("deployed"), "x")


def test_the_target_is_written_as_its_promotion_role(stages):
    """Every write into the target bucket goes through the role its bucket policy names."""
    dev, staging, _ = stages
    stack_with_outputs(
        staging.cloudformation,
        "tfhub-serving-staging-roles",
        {},
        {"tfhub-serving-staging-promotion-role-arn": "arn:aws:iam::222222222222:role/promotion"},
    )
    events = []

    def assume(role):
        events.append(role)
        return staging.s3

    import dataclasses

    target = dataclasses.replace(staging, s3=None, assume=assume)  # the caller's own client is never used
    record = promote(dev, target, lambda *a: events.append("deploy"), "c0ffee", lambda: NOW)
    back = rollback(target, record["record"], lambda *a: events.append("deploy"), "c0ffee", lambda: NOW)
    role = "arn:aws:iam::222222222222:role/promotion"
    # Assumed again after each deploy: a chained session lasts an hour, a blue/green deploy may take longer.
    assert events == [role, "deploy", role] * 2
    assert back["rollback_to"] == record["record"]


def test_a_failed_smoke_test_is_recorded_and_previous_returns_to_the_last_verified_state(stages):
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    repackage(dev, "other")
    second = promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1), smoke=fails)
    assert second["smoke"]["passed"] is False and second["smoke"]["problems"]
    served = []
    for hours in (2, 3):  # the CI rollback, then someone running it again
        back = rollback(
            staging,
            "previous",
            lambda stage, key, digest, assembly=None: served.append(digest),
            "back",
            lambda hours=hours: NOW + dt.timedelta(hours=hours),
        )
    assert served == [first["digest"], first["digest"]]
    assert back["rollback_to"] == first["record"] and back["smoke"]["passed"] is True


def test_a_smoke_test_that_gets_no_answer_is_a_failed_verdict(stages):
    from tools.cli import UserError as NoAnswer

    def unreachable(stage):
        raise NoAnswer("Invoking tfhub-serving-staging failed: ModelError")

    dev, staging, _ = stages
    record = promote(dev, staging, lambda *a: None, "one", lambda: NOW, smoke=unreachable)
    assert record["smoke"] == {"passed": False, "problems": ["Invoking tfhub-serving-staging failed: ModelError"]}


def serve_pinned(staging, packaged_dir: pathlib.Path, digest: str, key: str = "artifacts/pinned/use/4/") -> str:
    """staging as its first deploy left it: serving a pinned prefix of its bucket."""
    for path in sorted(packaged_dir.rglob("*")):
        if path.is_file():
            staging.s3.upload_file(str(path), "staging-bucket", key + path.relative_to(packaged_dir).as_posix())
    stack_with_outputs(
        staging.cloudformation,
        "tfhub-serving-staging-serving",
        {"ArtifactLocation": f"s3://staging-bucket/{key}", "TreeDigest": digest},
    )
    return f"s3://staging-bucket/{key}"


def test_a_failed_first_promotion_rolls_back_to_what_the_stage_served_before(stages, packaged):
    dev, staging, record = stages
    pinned = serve_pinned(staging, packaged[0], record["tree_digest"])
    repackage(dev, "other")
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW, smoke=fails)
    assert first["replaced"] == {"artifact": pinned, "digest": record["tree_digest"]}
    served = []
    for hours in (1, 2):
        back = rollback(
            staging,
            "previous",
            lambda stage, key, digest, assembly=None: served.append((key, digest)),
            "back",
            lambda hours=hours: NOW + dt.timedelta(hours=hours),
        )
    assert served == [("artifacts/pinned/use/4/", record["tree_digest"])] * 2
    assert back["rollback_to"] == "before-the-first-promotion"


def test_a_failed_first_promotion_onto_nothing_says_plainly_there_is_nothing_to_return_to(stages):
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW, smoke=fails)
    assert first["replaced"] is None
    with pytest.raises(PromotionError, match="is the stage's first promotion and the stage served nothing before it"):
        rollback(staging, "previous", lambda *a: pytest.fail("deployed"), "back")


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
    source = StageAccess("staging", "tfhub-serving-staging", staging.cloudformation, staging.s3, promoted=True)
    prod = StageAccess("prod", "tfhub-serving-staging", staging.cloudformation, staging.s3)
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


def test_the_source_is_read_in_its_own_region(monkeypatch):
    """Scenario 5: dev's region comes from its environment, not the staging job's."""
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        dev = promotion.stage_access("dev", region="us-west-2")
    assert dev.cloudformation.meta.region_name == "us-west-2" and dev.promoted is False


def test_a_rollback_restores_the_infrastructure_that_served_with_the_artifact(stages, tmp_path):
    """Scenario 4: the rollback deploys the assembly recorded with the verified
    promotion (its commit's infrastructure), not the one that failed."""
    dev, staging, _ = stages

    def assembly(name: str) -> pathlib.Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "tfhub-serving-staging-serving.template.json").write_text(json.dumps({"infrastructure": name}))
        return folder

    def deploys(folder):
        return lambda stage, key, digest, given=None: folder

    first = promote(dev, staging, deploys(assembly("v1")), "one", lambda: NOW)
    repackage(dev, "other")
    promote(dev, staging, deploys(assembly("v2")), "two", lambda: NOW + dt.timedelta(hours=1), smoke=fails)
    restored = []

    def redeploy(stage, key, digest, given=None):
        restored.append((digest, json.loads((given / "tfhub-serving-staging-serving.template.json").read_text())))

    back = rollback(staging, "previous", redeploy, "back", lambda: NOW + dt.timedelta(hours=2))
    assert restored == [(first["digest"], {"infrastructure": "v1"})]
    assert back["assembly"] == first["assembly"] and first["assembly"]["key"].startswith("promotions/assemblies/")
    # A stored assembly that no longer hashes to its record is refused.
    staging.s3.put_object(Bucket="staging-bucket", Key=first["assembly"]["key"], Body=b"changed")
    with pytest.raises(PromotionError, match="does not hash to its record's sha256"):
        rollback(staging, first["record"], lambda *a: pytest.fail("deployed"), "x")


def test_in_github_actions_the_record_and_smoke_report_go_to_the_run_summary(stages, tmp_path):
    dev, staging, _ = stages
    record = promote(dev, staging, lambda *a: None, "c0ffee", lambda: NOW, smoke=fails)
    summary = tmp_path / "summary.md"
    promotion.summarize(record, str(summary))
    text = summary.read_text()
    assert "### staging: promoted" in text and record["digest"] in text and "smoke test: FAILED" in text
    assert "output 'embedding' is 0.2" in text and record["record"] in text
