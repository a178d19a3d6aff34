"""What a rollback may deploy of a stored assembly: only its serving template, when it
is the stage's own serving stack serving the record's artifact, put into an assembly
synthesized now; anything else is refused, and the stored manifests are never used."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable

import pytest

from delivery import promote as promotion
from delivery.artifacts import PromotionError
from delivery.restorable import require_restorable, template_of, transplant
from stacks.stage.config import load_stage_config
from stacks.stage.names import StageNames
from tests.conftest import cdk_json_context
from tests.delivery.world import PINNED, REGION

STAGING = StageNames("tfhub-serving", "staging")
ACCOUNT = "222222222222"  # staging's in cdk.json
SERVING = "tfhub-serving-staging-serving"
# Staging and prod as this checkout's config has them, which the synthesized stacks serve.
CONFIGS = {stage: load_stage_config(cdk_json_context(), stage, check_images=False) for stage in ("staging", "prod")}


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_the_serving_stacks_synthesized_today_may_be_restored(synthesized, stage):
    """Keeps the checks true of what a promoted stage's serving stack is."""
    names = StageNames("tfhub-serving", stage)
    account = {"staging": ACCOUNT, "prod": "333333333333"}[stage]
    require_restorable(template_of(synthesized(stage).outdir, names), CONFIGS[stage], REGION, account, PINNED)


def test_digits_inside_a_digest_are_no_account(synthesized):
    """The tree digest the stack reports is hex: a run of twelve digits in it names no account."""
    template = copy.deepcopy(template_of(synthesized("staging").outdir, STAGING))
    template["Outputs"]["TreeDigest"] = {"Value": "5e575cba102b1b23fdf1304c7a981af97c857081969461edd1dcb5cf702b5b99"}
    require_restorable(template, CONFIGS["staging"], REGION, ACCOUNT, PINNED)


def _model(template: dict) -> dict:
    (model,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    return model


def _container(**changes) -> Callable[[dict], None]:
    return lambda template: _model(template)["PrimaryContainer"].update(changes)


def _resource(kind: str, **properties) -> Callable[[dict], None]:
    return lambda template: template["Resources"].update(Extra={"Type": kind, "Properties": properties})


def _role_policy(statement: dict) -> Callable[[dict], None]:
    def change(template: dict) -> None:
        (role,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
        role["Properties"]["AssumeRolePolicyDocument"]["Statement"].append(statement)

    return change


IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference:2.20.0-cpu"
OTHER_BUCKET = {"Fn::Join": ["", ["s3://", {"Fn::ImportValue": "tfhub-serving-dev-bucket-name"}, f"/{PINNED}"]]}
NESTED: list = []
for _ in range(60):
    NESTED = [NESTED]
HIDDEN_ACCOUNT = {"Fn::Join": ["", ["arn:aws:iam::", "111111111111", ":root"]]}

REFUSED = {
    "image-account": (_container(Image=IMAGE.replace("763104351884", "111111111111")), "outside the stage's account"),
    "image-repository": (_container(Image=IMAGE.replace("inference:", "inference-evil:")), "runs the image"),
    "image-host": (_container(Image=IMAGE.replace("amazonaws.com", "evil.example")), "runs the image"),
    "image-config": (_container(ImageConfig={"RepositoryAccessMode": "Vpc"}), r"has \['ImageConfig'\]"),
    "data-url": (_container(ModelDataUrl="s3://attacker/evil.tar.gz"), "s3://attacker/evil.tar.gz"),
    "data-other-stage": (_container(ModelDataUrl=OTHER_BUCKET), "imports 'tfhub-serving-dev-bucket-name'"),
    "role": (lambda t: _model(t).update(ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/admin"), "runs as"),
    "retained": (
        lambda t: next(r for r in t["Resources"].values() if r["Type"] == "AWS::SageMaker::Endpoint").update(
            DeletionPolicy="Retain"
        ),
        "has DeletionPolicy 'Retain'; the stacks' is Delete",
    ),
    "lambda": (_resource("AWS::Lambda::Function"), r"holds \['AWS::Lambda::Function'\]"),
    "transform": (lambda t: t.update(Transform="AWS::Include"), r"has \['Transform'\]"),
    "fn-transform": (_resource("AWS::SNS::Topic", TopicName={"Fn::Transform": {"Name": "M"}}), "Fn::Transform"),
    "parameter": (lambda t: t["Parameters"].update(Evil={"Type": "String"}), "which CDK's do not"),
    "trust-anyone": (
        _role_policy({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}),
        "principal",
    ),
    "trust-service": (
        _role_policy({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}),
        "lets 'lambda.amazonaws.com' act",
    ),
    "other-account": (
        _role_policy({"Effect": "Allow", "Principal": {"AWS": HIDDEN_ACCOUNT}, "Action": "sts:AssumeRole"}),
        "outside the stage's account",
    ),
    # Malformed, however: the refusal, on one line, and no other error.
    "parameters-a-number": (lambda t: t.update(Parameters=5), "has 5, which CDK's do not"),
    "parameters-a-list": (lambda t: t.update(Parameters=[{"Evil": 1}]), r"has \[\{'Evil': 1\}\]"),
    "nested-too-deep": (_container(Environment=NESTED), "nests deeper than 40 levels"),
    "trust-no-principal": (
        _role_policy({"Effect": "Allow", "Principal": {}, "Action": "sts:AssumeRole"}),
        "lets in no principal",
    ),
    "name-on-lines": (
        lambda t: t["Resources"].update({"Line\nBreak": {"Type": "AWS::SNS::Topic", "Properties": {"X": 1}}}),
        r"its AWS::SNS::Topic Line Break has \['X'\]",
    ),
}


@pytest.mark.parametrize(("change", "refusal"), REFUSED.values(), ids=REFUSED.keys())
def test_a_stored_serving_template_that_would_deploy_anything_else_is_refused(synthesized, change, refusal):
    template = copy.deepcopy(template_of(synthesized("staging").outdir, STAGING))
    change(template)
    with pytest.raises(PromotionError, match=f"not one a rollback may deploy: .*{refusal}") as refused:
        require_restorable(template, CONFIGS["staging"], REGION, ACCOUNT, PINNED)
    assert "\n" not in str(refused.value)


def test_an_assembly_without_the_serving_template_is_refused(tmp_path):
    with pytest.raises(PromotionError, match="holds no readable serving template tfhub-serving-staging-serving"):
        template_of(tmp_path, STAGING)


def test_the_checked_template_is_what_the_cli_uploads_and_deploys(synthesized, tmp_path):
    fresh = shutil.copytree(synthesized("staging").outdir, tmp_path / "fresh")
    template = copy.deepcopy(template_of(fresh, STAGING))
    template["Description"] = "the recorded infrastructure"
    transplant(template, fresh, SERVING)
    body = (fresh / f"{SERVING}.template.json").read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    assert json.loads(body)["Description"] == "the recorded infrastructure"
    (entry,) = json.loads((fresh / f"{SERVING}.assets.json").read_text())["files"].items()
    assert entry[0] == digest and entry[1]["source"]["path"] == f"{SERVING}.template.json"
    assert all(d["objectKey"] == f"{digest}.json" for d in entry[1]["destinations"].values())
    properties = json.loads((fresh / "manifest.json").read_text())["artifacts"][SERVING]["properties"]
    assert properties["stackTemplateAssetObjectUrl"].endswith(f"/{digest}.json")


def test_a_rollback_never_deploys_the_stored_manifests(synthesized, tmp_path, monkeypatch):
    """A stored assembly whose asset manifest names a command to run (the CDK CLI runs
    an asset's `executable`) and whose manifest names other roles: only its serving
    template is taken, into an assembly synthesized now."""
    stored = shutil.copytree(synthesized("staging").outdir, tmp_path / "stored")
    hostile = {"files": {"x": {"source": {"executable": ["sh", "-c", "touch pwned"]}, "destinations": {}}}}
    (stored / f"{SERVING}.assets.json").write_text(json.dumps({"version": "55.0.0", **hostile}))
    manifest = json.loads((stored / "manifest.json").read_text())
    manifest["artifacts"][SERVING]["properties"]["assumeRoleArn"] = "arn:aws:iam::111111111111:role/attacker"
    (stored / "manifest.json").write_text(json.dumps(manifest))
    fresh = tmp_path / "fresh"
    monkeypatch.setattr(
        promotion.stage_assembly, "build", lambda *a: shutil.copytree(synthesized("staging").outdir, fresh)
    )
    monkeypatch.setattr(promotion.stage_assembly, "require_pinned", lambda *a: None)
    monkeypatch.setattr(promotion, "deployed_stage", lambda stage: stage)
    monkeypatch.setattr(promotion.preflight, "check", lambda stage, folder: None)
    deployed = []
    monkeypatch.setattr(
        promotion.stage_assembly.subprocess,
        "run",
        lambda command, **_: deployed.append(command) or subprocess.CompletedProcess(command, 0),
    )
    assert promotion.cdk_deploy("staging", PINNED, "d" * 64, stored, serving_only=True) == fresh
    (command,) = deployed
    assert command[command.index("--app") + 1] == str(fresh)
    assert "executable" not in (fresh / f"{SERVING}.assets.json").read_text()
    assert "attacker" not in (fresh / "manifest.json").read_text()
