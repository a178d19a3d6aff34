"""Promotion between serving forms (archive and prefix) and what the digest refuses in either."""

from __future__ import annotations

import dataclasses
import gzip
import io
import shutil
import tarfile

import boto3
import pytest
from moto import mock_aws

from delivery import artifact_copy, artifacts
from delivery.artifact_forms import ArtifactError
from delivery.artifacts import PromotionError
from stacks.stage.names import StageNames
from tests.delivery.world import (
    ARCHIVE_KEY,
    JOB_PREFIX,
    NOW,
    REGION,
    StageAccess,
    keys,
    only_listed_files,
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


@pytest.mark.parametrize("form", ["prefix", "archive"], ids=["instances' prefix", "serverless archive"])
def test_a_serverless_target_gets_no_archive_at_all_when_a_source_file_is_not_as_listed(
    stages, serverless_dev, packaged, form, tmp_path
):
    """The archive's upload completes only once every file went in as its manifest
    lists it: a changed file leaves no object behind (nothing to delete)."""
    dev, staging, _ = stages
    if form == "prefix":
        source = dev
        dev.s3.put_object(Bucket="dev-bucket", Key=f"{JOB_PREFIX}use/4/saved_model.pb", Body=b"changed")
    else:
        source = serverless_dev
        changed = shutil.copytree(packaged[0], tmp_path / "model")
        (changed / "use/4/saved_model.pb").write_bytes(b"changed")
        upload_archive(dev.s3, "dev-bucket", ARCHIVE_KEY, changed)
    target = StageAccess(
        "staging", StageNames("tfhub-serving", "staging"), staging.cloudformation, staging.s3, serverless_memory_mb=3072
    )
    with pytest.raises(PromotionError, match=r"use/4/saved_model.pb of .* is not the file its manifest lists"):
        promote(source, target, lambda *a: pytest.fail("deployed"), "c0ffee")
    assert keys(staging.s3, "staging-bucket", "artifacts/") == []
    assert not staging.s3.list_multipart_uploads(Bucket="staging-bucket").get("Uploads")


def _archive_with(dev, packaged, tmp_path, change) -> None:
    """dev's archive, made from a copy of the packaged model that `change` edits."""
    model = shutil.copytree(packaged[0], tmp_path / "model")
    change(model)
    upload_archive(dev.s3, "dev-bucket", ARCHIVE_KEY, model)


def test_an_archive_lacking_a_listed_file_gets_no_manifest_in_the_copy(stages, serverless_dev, packaged, tmp_path):
    """A copy without its manifest is one a later promotion completes; it never
    looks complete while a listed file is missing."""
    _, staging, record = stages
    _archive_with(serverless_dev, packaged, tmp_path, lambda m: (m / "use/4/saved_model.pb").unlink())
    with pytest.raises(PromotionError, match=r"lacks files its manifest lists: \['use/4/saved_model.pb'\]"):
        promote(serverless_dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")
    assert "manifest.json" not in only_listed_files(
        staging.s3, "staging-bucket", promoted(record["tree_digest"]), record
    )


@pytest.mark.parametrize(
    ("member", "refusal"),
    [("./use/4/saved_model.pb", "holds 'use/4/saved_model.pb' twice"), ("./use/4/a\nb", "unsafe path")],
    ids=["a path twice", "a newline in a path"],
)
def test_an_archive_with_an_ambiguous_member_is_refused(stages, serverless_dev, packaged, member, refusal):
    """Extracting keeps the last of two members of one path, and a newline would make
    the digest's one line per file ambiguous: either could make what was tested
    differ from what is promoted."""
    _, staging, _ = stages
    extra = tarfile.TarInfo(member)
    upload_archive(serverless_dev.s3, "dev-bucket", ARCHIVE_KEY, packaged[0], extra=extra)
    with pytest.raises(PromotionError, match=refusal):
        promote(serverless_dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")


def _member(name: str, data: bytes) -> bytes:
    """One tar member as it is stored: its header, then its data in whole blocks."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % tarfile.BLOCKSIZE)


def _members(model_dir) -> bytes:
    """The packaged model's files as tar members, with no end-of-archive marker."""
    files = (path for path in sorted(model_dir.rglob("*")) if path.is_file())
    return b"".join(_member(path.relative_to(model_dir).as_posix(), path.read_bytes()) for path in files)


# A serving script GNU tar extracts from behind a broken header (it skips to the
# next header), or with --ignore-zeros from after the end-of-archive marker.
HIDDEN = _member("code/inference.py", b"import os\nos.system('id')\n")
END = bytes(2 * tarfile.BLOCKSIZE)


@pytest.mark.parametrize(
    ("archive", "refusal"),
    [
        (lambda model: gzip.compress(model + b"Z" * 512 + HIDDEN + END), r"is corrupt after '.*': a broken header"),
        (lambda model: gzip.compress(model + END + HIDDEN + END), r"data follows its end-of-archive marker"),
        (lambda model: gzip.compress(model + END)[:-8], r"not a readable tar.gz \(Compressed file ended"),
        (lambda model: gzip.compress(model + END) + b"more", r"not a readable tar.gz \(Not a gzipped file"),
    ],
    ids=["a member behind a broken header", "a member after the end", "gzip cut short", "bytes after the gzip"],
)
def test_an_archive_that_does_not_end_as_one_ends_is_refused(stages, serverless_dev, packaged, archive, refusal):
    _, staging, record = stages
    body = archive(_members(packaged[0]))
    serverless_dev.s3.put_object(Bucket="dev-bucket", Key=ARCHIVE_KEY, Body=body)
    with pytest.raises(PromotionError, match=refusal):
        promote(serverless_dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")
    assert "manifest.json" not in only_listed_files(
        staging.s3, "staging-bucket", promoted(record["tree_digest"]), record
    )


def test_a_planted_archive_copy_hiding_a_member_is_refused_and_left_alone(stages, packaged):
    """An archive already at the digest's address is verified before it is used:
    one hiding a member behind a broken header is never deployed."""
    dev, staging, record = stages
    target = dataclasses.replace(staging, serverless_memory_mb=3072)
    key = artifacts.promoted_key(record["tree_digest"], archive=True)
    planted = gzip.compress(_members(packaged[0]) + b"Z" * 512 + HIDDEN + END)
    staging.s3.put_object(Bucket="staging-bucket", Key=key, Body=planted)
    with pytest.raises(PromotionError, match=r"a broken header follows.* The promoted copy is left alone"):
        promote(dev, target, lambda *a: pytest.fail("deployed"), "c0ffee")
    assert staging.s3.get_object(Bucket="staging-bucket", Key=key)["Body"].read() == planted


def _hiding_behind_a_global_size(model_dir) -> bytes:
    """The packaged model's files, the last one's header preceded by a global pax
    header holding its size and itself spanning HIDDEN too: tarfile reads every
    listed file and skips HIDDEN as data, GNU tar applies the size and extracts it."""
    *before, last = (path for path in sorted(model_dir.rglob("*")) if path.is_file())
    data = last.read_bytes()
    padded = data + bytes(-len(data) % tarfile.BLOCKSIZE)
    info = tarfile.TarInfo(last.relative_to(model_dir).as_posix())
    info.size = len(padded) + len(HIDDEN)
    return (
        b"".join(_member(path.relative_to(model_dir).as_posix(), path.read_bytes()) for path in before)
        + tarfile.TarInfo.create_pax_global_header({"size": str(len(data))})
        + info.tobuf(tarfile.USTAR_FORMAT)
        + padded
        + HIDDEN
        + END
    )


def test_a_planted_archive_copy_that_tar_programs_read_differently_is_refused_and_left_alone(stages, packaged):
    dev, staging, record = stages
    target = dataclasses.replace(staging, serverless_memory_mb=3072)
    key = artifacts.promoted_key(record["tree_digest"], archive=True)
    planted = gzip.compress(_hiding_behind_a_global_size(packaged[0]))
    staging.s3.put_object(Bucket="staging-bucket", Key=key, Body=planted)
    with pytest.raises(PromotionError, match=r"holds what tar programs read differently \(it has a global pax header"):
        promote(dev, target, lambda *a: pytest.fail("deployed"), "c0ffee")
    assert staging.s3.get_object(Bucket="staging-bucket", Key=key)["Body"].read() == planted


def test_an_archive_holding_a_sparse_file_is_refused(stages, serverless_dev, packaged):
    """A listed file as a pax sparse member mapped onto all its bytes: tarfile reads
    the file as listed, and where another extractor reads the map otherwise it is not."""
    _, staging, _ = stages
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(packaged[0].rglob("*")):
            if path.is_file():
                info = archive.gettarinfo(path, arcname=f"./{path.relative_to(packaged[0]).as_posix()}")
                if path.name == "saved_model.pb":
                    info.pax_headers = {"GNU.sparse.map": f"0,{info.size}", "GNU.sparse.size": str(info.size)}
                with path.open("rb") as stream:
                    archive.addfile(info, stream)
    serverless_dev.s3.put_object(Bucket="dev-bucket", Key=ARCHIVE_KEY, Body=buffer.getvalue())
    with pytest.raises(PromotionError, match=r"read differently \('./use/4/saved_model.pb' is a sparse file"):
        promote(serverless_dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")


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
    dev, staging, record = stages
    link = tarfile.TarInfo("./use/4/assets/vocab.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    upload_archive(dev.s3, "dev-bucket", ARCHIVE_KEY, packaged[0], extra=link)
    with pytest.raises(PromotionError, match=r"holds './use/4/assets/vocab.txt', which is not a regular file"):
        promote(serverless_dev, staging, lambda *a: pytest.fail("deployed"), "c0ffee")
    # An archive shows its members only as it is read: what was copied before the
    # link stays (promoted copies are never deleted), each file as its manifest lists it.
    only_listed_files(staging.s3, "staging-bucket", promoted(record["tree_digest"]), record)


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


@mock_aws
def test_a_large_upload_whose_bytes_are_wrong_is_aborted_and_leaves_nothing(monkeypatch):
    """In parts (a large file) as in one put: the upload completes only once the
    bytes are confirmed; otherwise it is aborted (no object, no parts kept)."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="parts", CreateBucketConfiguration={"LocationConstraint": REGION})
    monkeypatch.setattr(artifact_copy, "_PART", 5 << 20)  # S3's smallest part

    def wrong() -> None:
        raise ArtifactError("not as listed")

    with pytest.raises(ArtifactError, match="not as listed"):
        artifact_copy.put_new(s3, "parts", "k", io.BytesIO(b"x" * (11 << 20)), ready=wrong)
    assert "Contents" not in s3.list_objects_v2(Bucket="parts")
    assert not s3.list_multipart_uploads(Bucket="parts").get("Uploads")
    artifact_copy.put_new(s3, "parts", "k", io.BytesIO(b"x" * (11 << 20)))
    assert s3.head_object(Bucket="parts", Key="k")["ContentLength"] == 11 << 20
