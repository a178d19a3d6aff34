"""A target on instances is given only what its Model may read (`stacks/serving/model_role.py`):
the model its config serves, laid out as `<name>/<version>/` and manifest.json. Anything
else is refused before a copy is written or a deploy is recorded, for a promotion and a
rollback alike."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from delivery.artifacts import PromotionError
from delivery.target import fits_layout
from fixtures.demo_model import save_text_model
from packaging_job.packager.package import package
from stacks.stage.schema import ModelConfig
from tests.delivery.world import JOB_PREFIX, MODEL, NOW, keys, promote, rollback, stack_with_outputs

NOT_DEPLOYED = lambda *a: pytest.fail("deployed")  # noqa: E731


@pytest.mark.parametrize(
    ("model", "held"),
    [(ModelConfig("other", 4, MODEL.hub_handle), "use/4"), (ModelConfig("use", 5, MODEL.hub_handle), "use/4")],
)
def test_a_promotion_of_another_model_than_the_configured_one_is_refused(stages, model, held):
    dev, staging, _ = stages
    target = dataclasses.replace(staging, model=model)
    with pytest.raises(
        PromotionError, match=rf"holds {held}, but staging's config serves {model.name}/{model.version}"
    ):
        promote(dev, target, NOT_DEPLOYED, "c0ffee")
    # Nothing copied, nothing recorded.
    assert keys(staging.s3, "staging-bucket") == []


def test_a_promotion_of_inference_code_is_refused(stages, tmp_path):
    dev, staging, _ = stages
    handler = tmp_path / "inference.py"
    handler.write_text("def handler(data, context):\n    return data\n")
    model = save_text_model(str(tmp_path / "src" / "model"))
    record = package(model, str(tmp_path / "model"), "use", 4, inference_code=str(handler), log=lambda m: None)
    _serve_from_dev(dev, tmp_path / "model", record["tree_digest"])
    with pytest.raises(PromotionError, match=r"holds \['code/inference.py'\] outside use/4/.*never serve inference"):
        promote(dev, staging, NOT_DEPLOYED, "c0ffee")
    assert keys(staging.s3, "staging-bucket") == []


def test_a_rollback_to_a_copy_of_another_model_is_refused(stages):
    dev, staging, _ = stages
    first = promote(dev, staging, lambda *a: None, "one", lambda: NOW)
    logged = keys(staging.s3, "staging-bucket", "promotions/")
    # This checkout's config now serves another version.
    target = dataclasses.replace(staging, model=ModelConfig("use", 5, MODEL.hub_handle))
    with pytest.raises(PromotionError, match=r"holds use/4, but staging's config serves use/5"):
        rollback(target, first["record"], NOT_DEPLOYED, "back")
    assert keys(staging.s3, "staging-bucket", "promotions/") == logged


@pytest.mark.parametrize(
    ("files", "refusal"),
    [
        (["use/4/saved_model.pb", "use/5/saved_model.pb"], r"\['use/5/saved_model.pb'\] outside use/4/"),
        (["use/4/saved_model.pb", "extra.txt"], r"\['extra.txt'\] outside use/4/"),
        (["use/4/saved_model.pb", "use/40/saved_model.pb"], r"\['use/40/saved_model.pb'\] outside use/4/"),
    ],
)
def test_files_outside_the_served_version_are_refused(stages, files, refusal):
    _, staging, _ = stages
    manifest = {"model_name": "use", "model_version": 4, "files": [{"path": path} for path in files]}
    with pytest.raises(PromotionError, match=refusal):
        fits_layout(staging, manifest)


def test_the_packaged_layout_fits_and_serverless_takes_any(stages):
    _, staging, _ = stages
    manifest = {"model_name": "use", "model_version": 4, "files": [{"path": "use/4/variables/variables.index"}]}
    fits_layout(staging, manifest)
    # A serverless target serves the model.tar.gz, whose files SageMaker reads as one object.
    other = {"model_name": "other", "model_version": 9, "files": [{"path": "code/inference.py"}]}
    fits_layout(dataclasses.replace(staging, serverless_memory_mb=3072), other)


def _serve_from_dev(dev, folder: pathlib.Path, digest: str) -> None:
    """dev's stack pointing at `folder` uploaded as its job's output."""
    for key in keys(dev.s3, "dev-bucket", JOB_PREFIX):
        dev.s3.delete_object(Bucket="dev-bucket", Key=key)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            dev.s3.upload_file(str(path), "dev-bucket", JOB_PREFIX + path.relative_to(folder).as_posix())
    dev.cloudformation.delete_stack(StackName="tfhub-serving-dev-serving")
    stack_with_outputs(
        dev.cloudformation,
        "tfhub-serving-dev-serving",
        {"ArtifactLocation": f"s3://dev-bucket/{JOB_PREFIX}", "TreeDigest": digest},
    )
