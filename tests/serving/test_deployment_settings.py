"""Production serving settings, validated at synth: each one a SageMaker rule or the
project refuses fails in one line naming the key, the value and the rule."""

from __future__ import annotations

import pytest

from stacks.stage.config import load_stage_config
from stacks.stage.schema import ConfigError


@pytest.mark.parametrize(
    ("stage", "edit", "fragments"),
    [
        (
            "dev",
            lambda s: s.update(deployment={"strategy": "canary", "step_instances": 1, "wait_minutes": 0}),
            ["stages.dev.deployment.strategy", "project rule serverless-traffic-shifting"],
        ),
        (
            "dev",
            lambda s: s.update(data_capture={"sampling_percent": 5}),
            ["stages.dev.data_capture", "SageMaker rule serverless-features"],
        ),
        (
            "staging",
            lambda s: s.update(deployment={"strategy": "linear", "step_instances": 1, "wait_minutes": 5}),
            ["stages.staging.deployment.step_instances: 1", "1 of 1 instance(s) is 100 %", "rule linear-step"],
        ),
        (
            "prod",
            lambda s: s["deployment"].update(step_instances=2),
            ["stages.prod.deployment.step_instances: 2", "2 of 2 instance(s) is 100 %", "rule canary-size"],
        ),
        # Autoscaling may grow prod to 12: one instance is then 8.33 %, under a linear step's 10 %.
        (
            "prod",
            lambda s: (
                s["deployment"].update(strategy="linear"),
                s["serving"]["instances"]["autoscaling"].update(max=12),
            ),
            ["1 of 11 instance(s) is 9.09 %", "outside 10-50 %"],
        ),
        # Ten linear steps of one at up to ten instances, 41 minutes after each and before the
        # old fleet ends: 451 minutes of waits; with 30 for the new fleet, over 8 hours.
        (
            "prod",
            lambda s: (
                s["deployment"].update(strategy="linear", wait_minutes=41),
                s["serving"]["instances"]["autoscaling"].update(max=10),
            ),
            [
                "stages.prod.deployment.wait_minutes: 41",
                "10 steps of 1 at up to 10 instances",
                "451 minutes",
                "rule blue-green-timeout",
            ],
        ),
        ("prod", lambda s: s["deployment"].update(step_percent=50), ["step_percent", "step_instances"]),
        ("prod", lambda s: s.pop("alarms"), ["stages.prod.deployment.strategy", "needs stages.prod.alarms"]),
        ("prod", lambda s: s["serving"]["instances"]["autoscaling"].update(min=3), ["instance count 2", "min 3"]),
        ("prod", lambda s: s["deployment"].update(strategy="rolling"), ["'rolling'", "all_at_once, canary, linear"]),
        ("prod", lambda s: s["alarms"].update(emails=["not-an-address"]), ["stages.prod.alarms.emails"]),
    ],
)
def test_production_settings_are_validated(context, stage, edit, fragments):
    edit(context["stages"][stage])
    with pytest.raises(ConfigError) as caught:
        load_stage_config(context, stage, default_region="us-east-1")
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_the_longest_linear_update_that_fits_the_timeout_synthesizes(context):
    context["stages"]["prod"]["deployment"].update(strategy="linear", wait_minutes=40)
    context["stages"]["prod"]["serving"]["instances"]["autoscaling"].update(max=10)
    assert load_stage_config(context, "prod", default_region="us-east-1").deployment.wait_minutes == 40
