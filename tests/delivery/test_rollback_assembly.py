"""A rollback with the assembly recorded beside its record (moto): the
infrastructure that served with the artifact comes back, checked first."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from delivery.artifacts import PromotionError
from tests.delivery.world import NOW, fails, promote, repackage, rollback, serving_assembly


def test_a_rollback_restores_the_infrastructure_that_served_with_the_artifact(stages, tmp_path):
    """Scenario 4: the rollback deploys the assembly recorded with the verified
    promotion (its commit's infrastructure), not the one that failed."""
    dev, staging, _ = stages

    def deploys(name: str):
        def deploy(stage, key, digest, given=None):
            return serving_assembly(tmp_path / name, key, digest, name)

        return deploy

    first = promote(dev, staging, deploys("v1"), "one", lambda: NOW)
    repackage(dev, "other")
    promote(dev, staging, deploys("v2"), "two", lambda: NOW + dt.timedelta(hours=1), smoke=fails)
    restored = []

    def redeploy(stage, key, digest, given=None):
        template = json.loads((given / "tfhub-serving-staging-serving.template.json").read_text())
        restored.append((digest, template["Description"]))
        return given

    back = rollback(staging, "previous", redeploy, "back", lambda: NOW + dt.timedelta(hours=2))
    assert restored == [(first["digest"], "v1")]
    assert back["assembly"] == first["assembly"] and first["assembly"]["key"].startswith("promotions/assemblies/")
    assert back["infrastructure"] == f"as recorded with {first['record']}"
    # A stored assembly that no longer hashes to its record is refused.
    staging.s3.put_object(Bucket="staging-bucket", Key=first["assembly"]["key"], Body=b"changed")
    with pytest.raises(PromotionError, match="does not hash to its record's sha256"):
        rollback(staging, first["record"], lambda *a: pytest.fail("deployed"), "x")


def test_a_planted_assembly_that_serves_anything_else_is_never_deployed(stages, tmp_path):
    """Whoever may act as the promotion role writes promotions/: a record whose
    assembly (content-addressed, hashing right) serves an attacker's bucket through
    the official image is refused before any deploy."""
    dev, staging, _ = stages

    def deploys_evil(stage, key, digest, given=None):
        # The promoted key stays in the outputs: only the Model serves something else.
        evil = serving_assembly(tmp_path / "evil", key, digest, "evil")
        template_path = evil / "tfhub-serving-staging-serving.template.json"
        template = json.loads(template_path.read_text())
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::SageMaker::Model":
                container = resource["Properties"]["PrimaryContainer"]
                container.pop("ModelDataSource", None)
                container["ModelDataUrl"] = "s3://attacker/evil.tar.gz"
        template_path.write_text(json.dumps(template))
        return evil

    first = promote(dev, staging, deploys_evil, "one", lambda: NOW)
    repackage(dev, "other")
    promote(dev, staging, lambda *a: None, "two", lambda: NOW + dt.timedelta(hours=1), smoke=fails)
    with pytest.raises(PromotionError, match="not one a rollback may deploy: it names s3://attacker/evil.tar.gz"):
        rollback(staging, first["record"], lambda *a: pytest.fail("deployed"), "back")
