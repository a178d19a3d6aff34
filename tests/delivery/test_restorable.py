"""What a rollback may deploy from a stored assembly: the stage's own serving stack as
this project synthesizes it, serving the record's artifact; anything else is refused."""

from __future__ import annotations

import json
import pathlib
import shutil
from collections.abc import Callable

import pytest

from delivery.artifacts import PromotionError
from delivery.restorable import SERVING_RESOURCE_TYPES, require_restorable
from stacks.stage.names import StageNames
from tests.delivery.world import PINNED, REGION

STAGING = StageNames("tfhub-serving", "staging")


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_the_serving_stacks_synthesized_today_may_be_restored(synthesized, stage):
    """Keeps SERVING_RESOURCE_TYPES equal to what a promoted stage's serving stack holds."""
    require_restorable(synthesized(stage).outdir, StageNames("tfhub-serving", stage), REGION, PINNED)


def test_the_allowed_resource_types_are_exactly_those_of_the_promoted_stages(synthesized):
    # The CDK CLI adds its version-reporting resource; an in-process synth does not.
    used = {"AWS::CDK::Metadata"}
    for stage in ("staging", "prod"):
        used |= {resource["Type"] for resource in synthesized(stage).serving.to_json()["Resources"].values()}
    assert used == SERVING_RESOURCE_TYPES


def _model(template: dict) -> dict:
    (model,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    return model


def _image(registry: str) -> Callable[[dict, dict], None]:
    def change(template: dict, manifest: dict) -> None:
        _model(template)["PrimaryContainer"]["Image"] = registry

    return change


def _data(value) -> Callable[[dict, dict], None]:
    def change(template: dict, manifest: dict) -> None:
        _model(template)["PrimaryContainer"]["ModelDataUrl"] = value

    return change


def _role(template: dict, manifest: dict) -> None:
    _model(template)["ExecutionRoleArn"] = "arn:aws:iam::222222222222:role/administrator"


def _lambda(template: dict, manifest: dict) -> None:
    template["Resources"]["Extra"] = {"Type": "AWS::Lambda::Function", "Properties": {}}


def _region(template: dict, manifest: dict) -> None:
    manifest["artifacts"]["tfhub-serving-staging-serving"]["environment"] = "aws://222222222222/us-east-1"


def _stack(template: dict, manifest: dict) -> None:
    manifest["artifacts"]["elsewhere"] = {"type": "aws:cloudformation:stack", "environment": "aws://1/eu-west-1"}


OTHER_BUCKET = {"Fn::Join": ["", ["s3://", {"Fn::ImportValue": "tfhub-serving-dev-bucket-name"}, f"/{PINNED}"]]}


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (_image("111111111111.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference:2.20.0-cpu"), "runs the image"),
        (_image("763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference-evil:1"), "runs the image"),
        (_data("s3://attacker/evil.tar.gz"), 'serves "s3://attacker/evil.tar.gz"'),
        (_data(OTHER_BUCKET), "serves .*tfhub-serving-dev-bucket-name"),
        (_role, "runs as 'arn:aws:iam::222222222222:role/administrator'"),
        (_lambda, r"holds \['AWS::Lambda::Function'\]"),
        (_region, "not the stage's region eu-west-1"),
        (_stack, r"holds the stacks \['elsewhere'"),
    ],
    ids=["image-account", "image-repository", "data-url", "data-other-stage", "role", "lambda", "region", "stacks"],
)
def test_a_stored_assembly_that_would_deploy_anything_else_is_refused(synthesized, tmp_path, change, refusal):
    folder = tmp_path / "assembly"
    shutil.copytree(synthesized("staging").outdir, folder)
    template_path = folder / "tfhub-serving-staging-serving.template.json"
    manifest_path = folder / "manifest.json"
    template, manifest = json.loads(template_path.read_text()), json.loads(manifest_path.read_text())
    change(template, manifest)
    template_path.write_text(json.dumps(template))
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(PromotionError, match=f"not one a rollback may deploy: .*{refusal}"):
        require_restorable(folder, STAGING, REGION, PINNED)


def test_an_assembly_without_the_serving_stack_is_refused(tmp_path: pathlib.Path):
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": {}}))
    with pytest.raises(PromotionError, match="holds no readable serving stack tfhub-serving-staging-serving"):
        require_restorable(tmp_path, STAGING, REGION, PINNED)
