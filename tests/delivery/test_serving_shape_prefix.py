"""The Model role's read grant on a promoted uncompressed copy, as a rollback checks a
stored template: the packaging job's layout of the record's copy (its model version's
folder and its manifest) or, as earlier stacks granted it, every object under the
copy; nothing outside the copy."""

from __future__ import annotations

import copy

import pytest

from delivery.artifacts import PromotionError
from delivery.restorable import require_restorable
from tests.delivery.shape_variants import ACCOUNTS, PREFIX, VARIANTS, properties_of

VARIANT = "prod-emails-prefix"
BUCKET = {"Fn::ImportValue": "tfhub-serving-prod-bucket-arn"}


def _read(template: dict) -> dict:
    statements = properties_of(template, "AWS::IAM::Policy")["PolicyDocument"]["Statement"]
    return next(s for s in statements if s["Action"] == "s3:GetObject")


def _objects(*keys: str) -> list[dict]:
    return [{"Fn::Join": ["", [BUCKET, f"/{key}"]]} for key in keys]


def _restore(variants, resources: list[dict]) -> None:
    template, config = copy.deepcopy(variants[VARIANT])
    _read(template)["Resource"] = resources
    require_restorable(template, config, config.region, ACCOUNTS["prod"], VARIANTS[VARIANT][1])


def test_a_promoted_copy_is_read_only_as_packaged(variants):
    template, _ = variants[VARIANT]
    assert sorted(r["Fn::Join"][1][-1] for r in _read(template)["Resource"]) == [
        f"/{PREFIX}manifest.json",
        f"/{PREFIX}universal-sentence-encoder/4/*",
    ]


def test_the_whole_copy_as_earlier_stacks_granted_it_may_be_restored(variants):
    _restore(variants, _objects(f"{PREFIX}*"))


@pytest.mark.parametrize(
    "key",
    [
        "artifacts/promoted/*",
        f"artifacts/promoted/{'e' * 64}/universal-sentence-encoder/4/*",
        f"{PREFIX}code/*",
        f"{PREFIX}universal-sentence-encoder/5/*",
        f"{PREFIX}universal-sentence-encoder/*",
        f"{PREFIX}manifest.json*",
    ],
)
def test_a_grant_beyond_the_copys_layout_is_refused(variants, key):
    with pytest.raises(PromotionError, match=r"grants s3:GetObject on .*not on what the stacks grant it"):
        _restore(variants, _objects(f"{PREFIX}manifest.json", key))
