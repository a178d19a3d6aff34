"""What the Model of an instance stage serving an uncompressed prefix may read, as IAM
decides it over the synthesized policies: the packaging job's layout of it (its model
version's folder and its manifest), not an object the promotion role added beside it
(README, "Who can change what serves")."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.compose import add_stage
from tests.iam_simulation import Account, Request
from tests.storage.test_bucket_access import ALLOWED, NOT_GRANTED, role
from tests.storage.test_roles import role_and_statements, tail

pytestmark = pytest.mark.synth

PREFIX = "artifacts/promoted/" + "d" * 64 + "/model/"
VERSION = "universal-sentence-encoder/4/"


def promoted(context, tmp_path, stage: str) -> tuple[Template, Template]:
    """`stage`'s storage and serving stacks synthesized as `make promote` does: `-c artifact=<copy>/`."""
    app = cdk.App(outdir=str(tmp_path), context={**context, "artifact": PREFIX, "artifact_digest": "d" * 64})
    stacks = add_stage(app, stage)
    passes_nag(app, tmp_path)
    return Template.from_stack(stacks.storage), Template.from_stack(stacks.serving)


def passes_nag(app: cdk.App, outdir) -> None:
    """Synthesis raises on a finding about the narrowed grant's wildcard left unacknowledged."""
    app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    assert all(plugin["summary"]["status"] == "success" for plugin in report["pluginReports"])


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_a_promoted_prefix_is_read_only_as_packaged(context, tmp_path, stage):
    storage, serving = promoted(context, tmp_path, stage)
    _, statements = role_and_statements(serving, "ModelRole")
    assert sorted(tail(r) for r in statements["ReadTheArtifact"]["Resource"]) == [
        f"/{PREFIX}manifest.json",
        f"/{PREFIX}{VERSION}*",
    ]
    # SageMaker lists the whole prefix to download it: an added object is found, then refused.
    assert statements["ListTheArtifact"]["Condition"] == {"StringLike": {"s3:prefix": [f"{PREFIX}*"]}}
    account = Account(storage.to_json(), serving.to_json())
    model = role(account, "ModelRole")
    assert (
        account.decide(
            Request(model, "s3:GetObject", f"{PREFIX}{VERSION}saved_model.pb"),
            Request(model, "s3:GetObject", f"{PREFIX}{VERSION}variables/variables.index"),
            Request(model, "s3:GetObject", f"{PREFIX}manifest.json"),
            Request(model, "s3:GetObject", f"{PREFIX}code/inference.py"),
            Request(model, "s3:GetObject", f"{PREFIX}universal-sentence-encoder/5/saved_model.pb"),
            Request(model, "s3:GetObject", f"{PREFIX}other-model/4/saved_model.pb"),
            Request(model, "s3:GetObject", f"{PREFIX}extra.txt"),
            Request(model, "s3:GetObject", f"{PREFIX}manifest.json.bak"),
        )
        == [ALLOWED] * 3 + [NOT_GRANTED] * 5
    )


def test_dev_on_instances_reads_only_its_jobs_layout(context, tmp_path):
    # As the rehearsal switches it (rehearsal/dev_steps.py): the job then packages uncompressed.
    context["stages"]["dev"]["serving"] = {"instances": {"type": "ml.m5.large", "count": 1}}
    app = cdk.App(outdir=str(tmp_path), context=context)
    stacks = add_stage(app, "dev", default_region="eu-west-1")
    passes_nag(app, tmp_path)
    storage, serving = Template.from_stack(stacks.storage), Template.from_stack(stacks.serving)
    (job,) = serving.find_resources("Custom::TfHubPackagingJob")
    output = f"artifacts/packaging/{stacks.config.job_name_prefix}-0123456789ab/output/model/"
    account = Account(storage.to_json(), serving.to_json(), values={f"{job}.ArtifactKey": output})
    model = role(account, "ModelRole")
    assert (
        account.decide(
            Request(model, "s3:GetObject", f"{output}{VERSION}saved_model.pb"),
            Request(model, "s3:GetObject", f"{output}manifest.json"),
            Request(model, "s3:GetObject", f"{output}code/inference.py"),
            Request(model, "s3:GetObject", f"{output}universal-sentence-encoder/5/saved_model.pb"),
        )
        == [ALLOWED] * 2 + [NOT_GRANTED] * 2
    )
