"""Fixtures for the packaging job: a real SavedModel, its archive, a loopback hub."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

JOB_DIR = pathlib.Path(__file__).resolve().parents[2] / "packaging_job"
# The job imports `packager` from its own folder, as the training toolkit runs it.
sys.path.insert(0, str(JOB_DIR))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fixtures.demo_model import compressed_archive, save_text_model  # noqa: E402
from fixtures.hub_server import HubServer  # noqa: E402


@pytest.fixture(scope="session")
def text_model(tmp_path_factory) -> pathlib.Path:
    return pathlib.Path(save_text_model(str(tmp_path_factory.mktemp("source") / "model")))


@pytest.fixture(scope="session")
def text_archive(text_model) -> bytes:
    return compressed_archive(str(text_model))


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server
