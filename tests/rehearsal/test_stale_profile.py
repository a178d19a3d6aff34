"""A stale AWS_PROFILE (one this machine's AWS config lacks) leaves the rehearsal working:
its own clients and the user's shell never read the profile."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rehearsal.emulators import CREDENTIALS, REGION, Emulators
from rehearsal.user import User

pytestmark = pytest.mark.unit


@pytest.fixture
def stale_profile(tmp_path, monkeypatch):
    # A home without AWS config, so the profile is missing for boto3 as for the CLI.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_PROFILE", "gone")
    monkeypatch.setenv("AWS_DEFAULT_PROFILE", "gone")


def _emulators() -> Emulators:
    sagemaker = SimpleNamespace(url="http://127.0.0.1:2")
    return Emulators("http://127.0.0.1:1", "http://127.0.0.1:3", sagemaker)  # type: ignore[arg-type]


@pytest.mark.parametrize("service", ["cloudformation", "s3", "sagemaker"])
def test_the_rehearsals_clients_build_with_its_own_credentials(stale_profile, service):
    client = _emulators().client(service)
    credentials = client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == (
        CREDENTIALS["AWS_ACCESS_KEY_ID"],
        CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    assert client.meta.region_name == REGION


def test_the_users_shell_carries_no_profile(stale_profile, tmp_path):
    aws = _emulators()
    user = User(tmp_path / "work", aws.user_env, print)
    assert not {"AWS_PROFILE", "AWS_DEFAULT_PROFILE"} & set(user.env)
    assert {k: v for k, v in user.env.items() if k.startswith("AWS_")} == aws.user_env
    assert user.region == REGION
