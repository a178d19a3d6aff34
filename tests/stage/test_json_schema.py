"""The checked-in JSON Schema of cdk.json is what the settings models generate, and the shipped cdk.json fits it."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from stacks.stage.json_schema import SCHEMA_FILE, render
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_checked_in_schema_is_what_the_models_generate():
    assert SCHEMA_FILE.read_text() == render(), (
        "regenerate it: .venv/bin/python -m stacks.stage.json_schema > stacks/stage/cdk-json.schema.json"
    )


def test_the_shipped_cdk_json_fits_the_schema(validator):
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    assert [error.message for error in validator.iter_errors(cdk_json)] == []


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda s: s["serving"]["serverless"].update(memory_mb=1000), ["serving", "serverless", "memory_mb"]),
        (
            lambda s: s["serving"]["serverless"].update(max_concurrency="5"),
            ["serving", "serverless", "max_concurrency"],
        ),
        (lambda s: s.update(colour="blue"), []),
        (lambda s: s.update(deployment=None), ["deployment"]),
        (lambda s: s.update(removal_policy="snapshot"), ["removal_policy"]),
    ],
)
def test_an_editor_sees_what_synth_refuses(validator, edit, where):
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    dev = copy.deepcopy(cdk_json["context"]["stages"]["dev"])
    edit(dev)
    cdk_json["context"]["stages"]["dev"] = dev
    paths = [list(error.absolute_path) for error in validator.iter_errors(cdk_json)]
    assert paths == [["context", "stages", "dev", *where]]
