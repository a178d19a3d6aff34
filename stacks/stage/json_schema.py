"""The JSON Schema of cdk.json, generated from the stage settings models.

An editor that maps it to cdk.json completes and checks `context.project` and
`context.stages` as you type; synth still validates with the models
themselves, which also check what joins a stage's parts (`checks.py`).
The checked-in copy is `stacks/stage/cdk-json.schema.json`; regenerate it with

    .venv/bin/python -m stacks.stage.json_schema > stacks/stage/cdk-json.schema.json

(`tests/stage/test_json_schema.py` fails while the two differ).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stacks.stage.fields import Project, StageName
from stacks.stage.stage_settings import StageSettings

SCHEMA_FILE = pathlib.Path(__file__).with_name("cdk-json.schema.json")


class StagesContext(BaseModel):
    """cdk.json's context: the project and its stages; the CDK's feature flags beside them."""

    model_config = ConfigDict(extra="allow", strict=True)

    project: Project
    stages: dict[StageName, StageSettings] = Field(min_length=1)


class CdkJson(BaseModel):
    """cdk.json: the CDK CLI's settings, and the context the app reads its stages from."""

    model_config = ConfigDict(extra="allow", strict=True, title="cdk.json")

    context: StagesContext


def schema() -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **CdkJson.model_json_schema()}


def render() -> str:
    return json.dumps(schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
