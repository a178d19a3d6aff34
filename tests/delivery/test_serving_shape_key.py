"""The alarm topic's key in a stored template lets CloudWatch do what the stacks let
it (encrypt the alarms' notifications: kms:Decrypt and kms:GenerateDataKey*), and
nothing more."""

from __future__ import annotations

import copy
import re

import pytest

from delivery.artifacts import PromotionError
from delivery.restorable import require_restorable, template_of
from stacks.stage.names import StageNames
from tests.delivery.shape_variants import ACCOUNTS, checkout_config, properties_of
from tests.delivery.world import PINNED, REGION

CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}


def with_key_statement(synthesized, **statement) -> dict:
    template = copy.deepcopy(template_of(synthesized("staging").outdir, StageNames("tfhub-serving", "staging")))
    properties_of(template, "AWS::KMS::Key")["KeyPolicy"]["Statement"].append({"Effect": "Allow", **statement})
    return template


def restore(template: dict) -> None:
    require_restorable(template, checkout_config("staging"), REGION, ACCOUNTS["staging"], PINNED)


@pytest.mark.parametrize("action", ["kms:ScheduleKeyDeletion", "kms:*", "KMS:CreateGrant"])
def test_cloudwatch_may_not_do_more_with_the_key(synthesized, action):
    template = with_key_statement(synthesized, Principal=CLOUDWATCH, Action=["kms:Decrypt", action], Resource="*")
    with pytest.raises(PromotionError, match=rf"lets CloudWatch \['{re.escape(action.lower())}'\], beyond encrypting"):
        restore(template)


def test_cloudwatch_may_encrypt_in_any_spelling_of_its_actions(synthesized):
    restore(with_key_statement(synthesized, Principal=CLOUDWATCH, Action="KMS:decrypt", Resource="*"))
