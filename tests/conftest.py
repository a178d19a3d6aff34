"""Shared fixtures: the real cdk.json context, and each stage synthesized once."""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, cast

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.compose import StageStacks, add_stage

ROOT = pathlib.Path(__file__).resolve().parent.parent
STAGES = ("dev", "staging", "prod")
# dev has no region in cdk.json; the region rule gives the app one, here this.
DEV_REGION = "us-east-1"

# jsii runs the CDK on the Node.js pinned in package.json when it is installed.
_NODE_BIN = ROOT / "node_modules" / ".bin"
if _NODE_BIN.is_dir():
    os.environ["PATH"] = f"{_NODE_BIN}{os.pathsep}{os.environ['PATH']}"


def cdk_json_context() -> dict[str, Any]:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@pytest.fixture
def context() -> dict[str, Any]:
    """A private copy of cdk.json's context that a test may edit."""
    return copy.deepcopy(cdk_json_context())


def synth_stage(stage: str, outdir: pathlib.Path, context: dict[str, Any] | None = None) -> StageStacks:
    app = cdk.App(outdir=str(outdir), context=context or cdk_json_context())
    return add_stage(app, stage, default_region=DEV_REGION)


class SynthesizedStage:
    def __init__(self, stage: StageStacks, outdir: pathlib.Path) -> None:
        self.stage = stage
        self.storage = Template.from_stack(stage.storage)
        self.serving = Template.from_stack(stage.serving)
        self.assembly = cast(cdk.App, cdk.App.of(stage.storage)).synth()
        self.outdir = outdir


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> Callable[[str], SynthesizedStage]:
    """Each stage of the real cdk.json, synthesized once per test session."""
    cache: dict[str, SynthesizedStage] = {}

    def get(stage: str) -> SynthesizedStage:
        if stage not in cache:
            outdir = tmp_path_factory.mktemp(f"cdk-{stage}")
            cache[stage] = SynthesizedStage(synth_stage(stage, outdir), outdir)
        return cache[stage]

    return get


@contextlib.contextmanager
def moto_server(**env: str) -> Iterator[str]:
    """moto's server on a free loopback port (the emulators' venv); yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [str(ROOT / ".venv-emulators" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


# Tiers, so one can run alone (`pytest -m unit`): by the folder a test lives in,
# else by what the test does: synthesize (the fixture, `synth_stage`, an App, a
# Template, `make synth`), or talk to moto; a module's `pytestmark` overrides both.
TIERS = {
    "integ/": "aws",
    "packaging_job/": "job",
    "rehearsal/": "emulated",
    "delivery/": "emulated",
    "tools/": "emulated",
    "cost_guard/": "emulated",
    "model_packaging/test_handler": "emulated",
    "rulebook/test_strict_sagemaker.py": "emulated",
    "test_app.py": "synth",
    "account_setup/": "synth",
    "compliance/": "synth",
    "rulebook/test_rule_matrix.py": "synth",
}


TIER_NAMES = ("unit", "synth", "job", "emulated", "aws")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = ROOT / "tests"
    for item in items:
        if any(item.get_closest_marker(name) for name in TIER_NAMES):
            continue  # the module or the test names its tier itself
        where = item.path.relative_to(tests).as_posix()
        tier = next((t for prefix, t in TIERS.items() if where.startswith(prefix)), None)
        if tier is None:
            tier = _tier_by_what_it_does(item)
        item.add_marker(getattr(pytest.mark, tier))


def _tier_by_what_it_does(item: pytest.Item) -> str:
    function = getattr(item, "function", None)
    source = inspect.getsource(function) if function else ""
    synthesizes = ("synth_stage(", 'make("synth"', "cdk.App(", "Template.from_stack(", "cli_synth(")
    if "synthesized" in getattr(item, "fixturenames", ()) or any(call in source for call in synthesizes):
        return "synth"
    if "mock_aws" in source or "moto_server(" in source:
        return "emulated"
    return "unit"
