"""Real AWS: deploy dev, smoke-test it, destroy it and check nothing is left.

Runs only where AWS credentials are present (and costs money: a training job
and a serverless endpoint for a few minutes); skipped with the reason otherwise,
which pytest's -ra summary prints, so it never counts as passed.
"""

from __future__ import annotations

import subprocess

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.conftest import ROOT


def _account() -> str | None:
    try:
        return boto3.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError):
        return None


ACCOUNT = _account()
pytestmark = pytest.mark.skipif(
    ACCOUNT is None, reason="no AWS credentials: the real-AWS deploy/smoke/destroy test did not run"
)


def make(*args: str) -> None:
    subprocess.run(["make", *args], cwd=ROOT, check=True, timeout=3600)


def test_dev_deploys_serves_and_leaves_nothing_behind():
    try:
        make("deploy", "STAGE=dev", "APPROVAL=never")
        make("smoke", "STAGE=dev")
    finally:
        # `make destroy` fails if any SageMaker resource of the stage is left.
        make("destroy", "STAGE=dev")
