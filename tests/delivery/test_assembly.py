"""A stage's assembly built once, checked to pin what is promoted, stored and restored
byte for byte (the real `cdk synth` builds it; moto holds the bucket)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import time

import boto3
import pytest
from moto import mock_aws

from delivery import assembly
from delivery import promote as promotion
from delivery.artifacts import PromotionError
from tests.conftest import ROOT

DIGEST = "d" * 64
KEY = f"artifacts/promoted/{DIGEST}/model/"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> pathlib.Path:
    """`make assembly STAGE=staging DIGEST=...`'s tool, run as CI runs it: with CI=true
    the CDK CLI prints on stdout, where only the assembly's path may appear."""
    out = tmp_path_factory.mktemp("assembly") / "staging"
    result = subprocess.run(
        [sys.executable, "-m", "delivery.assembly", "--stage", "staging", "--digest", DIGEST, "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "CI": "true"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    return out


def test_the_assembly_pins_the_promoted_copy_of_the_digest(built):
    assert assembly.pinned(built, "tfhub-serving-staging-serving") == (KEY, DIGEST)
    assembly.require_pinned(built, "tfhub-serving-staging-serving", KEY, DIGEST)
    with pytest.raises(PromotionError, match="build it for this promotion"):
        assembly.require_pinned(built, "tfhub-serving-staging-serving", KEY, "e" * 64)
    with pytest.raises(PromotionError, match="holds no serving stack tfhub-serving-prod-serving"):
        assembly.pinned(built, "tfhub-serving-prod-serving")


def test_a_malformed_digest_builds_nothing(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "delivery.assembly",
            "--stage",
            "staging",
            "--digest",
            "$(touch pwned)",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "is not a tree digest" in result.stderr
    assert not (tmp_path / "out").exists()


@mock_aws
def test_a_stored_assembly_comes_back_byte_for_byte_once_written(built, tmp_path, monkeypatch):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="stage-bucket")
    stored = assembly.store(s3, "stage-bucket", built)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 3600)  # packed an hour later: no time in the bytes
    assert stored == assembly.store(s3, "stage-bucket", built)  # content-addressed: the same key again
    restored = assembly.restore(s3, "stage-bucket", stored, tmp_path / "restored")
    original = {p.relative_to(built): p.read_bytes() for p in built.rglob("*") if p.is_file()}
    assert {p.relative_to(restored): p.read_bytes() for p in restored.rglob("*") if p.is_file()} == original
    assert assembly.store(s3, "stage-bucket", restored) == stored  # a rollback records the same assembly


@mock_aws
@pytest.mark.parametrize("member", ["link", "escape"])
def test_a_stored_assembly_with_links_or_escaping_paths_is_refused(member, tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="stage-bucket")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        if member == "link":
            info = tarfile.TarInfo("manifest.json")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(info)
        else:
            body = json.dumps({}).encode()
            info = tarfile.TarInfo("../outside.json")
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    body = buffer.getvalue()

    key = f"promotions/assemblies/{hashlib.sha256(body).hexdigest()}.tar.gz"
    s3.put_object(Bucket="stage-bucket", Key=key, Body=body)
    with pytest.raises(PromotionError, match="not a plain file|outside"):
        assembly.restore(
            s3, "stage-bucket", {"key": key, "sha256": hashlib.sha256(body).hexdigest()}, tmp_path / "restored"
        )
    assert not (tmp_path / "outside.json").exists()


def test_a_rollback_deploys_the_serving_stack_alone(built, tmp_path, monkeypatch):
    """The storage stack (the bucket's guards, the roles) stays as this commit made it;
    a rollback deploys an assembly synthesized now (tests/delivery/test_restorable.py)."""
    commands = []

    def run(command, **_):
        commands.append(command)
        return subprocess.CompletedProcess(command, 0)

    fresh = tmp_path / "fresh"
    monkeypatch.setattr(assembly, "build", lambda *a: shutil.copytree(built, fresh))
    monkeypatch.setattr(assembly.subprocess, "run", run)
    # Each deploy is checked against the endpoint as deployed first (tests/delivery/test_preflight.py).
    monkeypatch.setattr(promotion, "deployed_stage", lambda stage: stage)
    monkeypatch.setattr(promotion.preflight, "check", lambda stage, folder: commands.append(["check", stage, folder]))
    promotion.cdk_deploy("staging", KEY, DIGEST, built, serving_only=True)
    promotion.cdk_deploy("staging", KEY, DIGEST, built)
    assert commands[0] == ["check", "staging", fresh] and commands[2] == ["check", "staging", built]
    restore = commands[1][commands[1].index(str(fresh)) + 1 :]
    promote = commands[3][commands[3].index(str(built)) + 1 :]
    assert restore[:2] == ["tfhub-serving-staging-serving", "--exclusively"] and "--all" not in restore
    assert promote[0] == "--all"
