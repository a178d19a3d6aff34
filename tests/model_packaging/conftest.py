"""The packaging handler's surroundings in tests: its environment, as the construct sets it,
fresh clients for each test, and Stubber-backed SageMaker and S3 where it looks for them."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from packaging_job.packager.manifest import MANIFEST_NAME
from stacks.model_packaging.handler_asset.packaging_handler import handler
from stacks.model_packaging.job_contract import job_contract
from tests.model_packaging.world import REGION


@pytest.fixture(autouse=True)
def handler_environment(monkeypatch):
    monkeypatch.setenv("MANIFEST_NAME", MANIFEST_NAME)
    for name, value in job_contract().environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WAIT_LIMIT_SECONDS", "3000")


@pytest.fixture(autouse=True)
def fresh_clients():
    handler._clients.clear()
    yield
    handler._clients.clear()


@pytest.fixture
def stubbed():
    """SageMaker and S3 clients with Stubbers, installed where the handler looks."""
    stubs = {}
    for service in ("sagemaker", "s3"):
        client = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        handler._clients[service] = client
        stubs[service] = Stubber(client)
        stubs[service].activate()
    yield stubs
    for stub in stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()
