"""A rolled-back template pays for no more than this checkout's config gives the stage:
its instance type, no more instances than the config runs (its count or autoscaling
maximum), serverless memory and concurrency within the config's and no provisioned
concurrency, and the config's way of serving (instances or serverless)."""

from __future__ import annotations

import copy

import pytest

from delivery.artifacts import PromotionError
from delivery.restorable import require_restorable, template_of
from stacks.stage.names import StageNames
from tests.delivery.shape_variants import (
    ACCOUNTS,
    ARCHIVE,
    PREFIX,
    TARGET,
    VARIANT,
    added,
    checkout_config,
    updated,
    variant_changed,
)
from tests.delivery.world import PINNED, REGION

STAGING = StageNames("tfhub-serving", "staging")

INSTANCES_REFUSED = {
    "instance-type": (
        variant_changed(InstanceType="ml.p5.48xlarge"),
        "runs 'ml.p5.48xlarge'; this checkout's config runs",
    ),
    "instance-count": (
        variant_changed(InitialInstanceCount=100),
        "instance count of .* is 100, not a whole number from 1",
    ),
    "serverless-on-an-instance-stage": (variant_changed(ServerlessConfig={"MemorySizeInMB": 1024}), "runs serverless;"),
    "scale-out-beyond": (
        added(
            "AWS::ApplicationAutoScaling::ScalableTarget", ResourceId=VARIANT, MinCapacity=1, MaxCapacity=9, **TARGET
        ),
        "the most instances of .* is 9, not a whole number from 1 to 1",
    ),
}


@pytest.mark.parametrize(("change", "refusal"), INSTANCES_REFUSED.values(), ids=INSTANCES_REFUSED.keys())
def test_an_instance_template_runs_no_more_than_the_config_gives(synthesized, change, refusal):
    template = copy.deepcopy(template_of(synthesized("staging").outdir, STAGING))
    change(template)
    with pytest.raises(PromotionError, match=f"not one a rollback may deploy: .*{refusal}"):
        require_restorable(template, checkout_config("staging"), REGION, ACCOUNTS["staging"], PINNED)


SERVERLESS_REFUSED = {
    "more-memory": (
        variant_changed(ServerlessConfig={"MemorySizeInMB": 6144, "MaxConcurrency": 5}),
        "memory .* is 6144",
    ),
    "more-concurrency": (
        variant_changed(ServerlessConfig={"MemorySizeInMB": 3072, "MaxConcurrency": 200}),
        "concurrency .* is 200",
    ),
    "provisioned-concurrency": (
        variant_changed(ServerlessConfig={"MemorySizeInMB": 3072, "MaxConcurrency": 5, "ProvisionedConcurrency": 5}),
        r"has \['ProvisionedConcurrency'\]",
    ),
    "instances": (variant_changed(InstanceType="ml.m5.large", InitialInstanceCount=1), "runs on instances"),
    "isolation-on": (updated("AWS::SageMaker::Model", EnableNetworkIsolation=True), "network isolation True"),
    "scaled": (
        added(
            "AWS::ApplicationAutoScaling::ScalableTarget", ResourceId=VARIANT, MinCapacity=1, MaxCapacity=1, **TARGET
        ),
        "by no more than serverless concurrency",
    ),
}


@pytest.mark.parametrize(("change", "refusal"), SERVERLESS_REFUSED.values(), ids=SERVERLESS_REFUSED.keys())
def test_a_serverless_template_pays_for_no_more_than_the_config_gives(variants, change, refusal):
    template, config = copy.deepcopy(variants["staging-serverless-archive"])
    change(template)
    with pytest.raises(PromotionError, match=f"not one a rollback may deploy: .*{refusal}"):
        require_restorable(template, config, REGION, ACCOUNTS["staging"], ARCHIVE)


def test_an_autoscaled_stage_may_start_as_many_instances_as_it_scales_to_and_no_more(variants):
    template, config = copy.deepcopy(variants["prod-emails-prefix"])
    variant_changed(InitialInstanceCount=4)(template)
    require_restorable(template, config, REGION, ACCOUNTS["prod"], PREFIX)
    updated("AWS::ApplicationAutoScaling::ScalableTarget", MaxCapacity=5)(template)
    with pytest.raises(PromotionError, match="the most instances of .* is 5, not a whole number from 1 to 4"):
        require_restorable(template, config, REGION, ACCOUNTS["prod"], PREFIX)
