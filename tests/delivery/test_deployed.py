"""A deployed stage's AWS clients: every one the delivery tools create retries."""

from __future__ import annotations

import os

import boto3
from moto import mock_aws

from delivery.deployed import deployed_stage
from tests.delivery.world import STAGING_ACCOUNT, session


def test_every_client_retries_throttles_and_server_errors(monkeypatch):
    """boto3 guide, "Retries": standard mode; botocore counts the first call in
    total_max_attempts, so 10 retries are 11 attempts."""
    with mock_aws():
        credentials = session(STAGING_ACCOUNT).get_credentials()
        environ = {
            "AWS_ACCESS_KEY_ID": credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
            "AWS_SESSION_TOKEN": credentials.token,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        made = []
        create = boto3.session.Session.client

        def recorded(self, service, *args, **kwargs):
            made.append(create(self, service, *args, **kwargs))
            return made[-1]

        monkeypatch.setattr(boto3.session.Session, "client", recorded)
        # Staging names its account: reaching it checks the caller's identity first.
        stage = deployed_stage("staging", environ)
        stage.client("s3")
        stage.as_role(f"arn:aws:iam::{STAGING_ACCOUNT}:role/promotion", "test").client("cloudformation")
    assert [client.meta.service_model.service_name for client in made] == ["sts", "s3", "sts", "cloudformation"]
    for client in made:
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 11}
