"""The check of a deploy against the deployed stage, before the CDK CLI runs: in
`make deploy`, and in `make promote` (and its rollbacks) before each deploy.

The synth gate checks every rule a template can break on its own; the rules of
an update (`stacks/rulebook/updates.py`) need the endpoint as it is deployed,
so this reads it (DescribeEndpoint, DescribeEndpointConfig, Application Auto
Scaling's DescribeScalableTargets) and refuses in one line, naming the rule,
a deploy SageMaker would refuse minutes into CloudFormation's update.

The check only brings SageMaker's refusal forward: what it cannot read (no
permission, an emulator without Application Auto Scaling) it says it did not
check, and the deploy goes on; SageMaker still refuses such an update itself.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from delivery.deployed import DeployedStage
from delivery.status import described_endpoint
from stacks.rulebook.updates import check_update
from tools.cli import UserError


class DeployedEndpoint:
    """`requests.Lookups` over the live account: the endpoint, its configs, its scaling."""

    def __init__(self, stage: DeployedStage, say: Callable[[str], None]) -> None:
        self.sagemaker = stage.client("sagemaker")
        self.autoscaling = stage.client("application-autoscaling")
        self.say = say

    def model(self, name: str) -> dict | None:
        return None

    def endpoint_config(self, name: str) -> dict | None:
        return self.sagemaker.describe_endpoint_config(EndpointConfigName=name)

    def endpoint(self, name: str) -> dict | None:
        return described_endpoint(self.sagemaker, name)

    def prefix_keys(self, uri: str) -> list[str] | None:
        return None

    def scaling(self, endpoint_name: str) -> dict[str, tuple[int, int]]:
        try:
            return registered_variants(self.autoscaling, endpoint_name)
        except (ClientError, BotoCoreError) as error:
            self.say(f"update check: autoscaling not read ({error}), an autoscaled variant's instance type not checked")
            return {}


def registered_variants(autoscaling, endpoint_name: str) -> dict[str, tuple[int, int]]:
    """Each of the endpoint's variants registered with Application Auto Scaling: its
    (min, max) instance count."""
    # A variant's scalable target is `endpoint/<endpoint>/variant/<variant>` with the
    # dimension sagemaker:variant:DesiredInstanceCount (SageMaker developer guide,
    # "Register a model").
    prefix = f"endpoint/{endpoint_name}/variant/"
    pages = autoscaling.get_paginator("describe_scalable_targets").paginate(ServiceNamespace="sagemaker")
    return {
        target["ResourceId"].removeprefix(prefix): (target["MinCapacity"], target["MaxCapacity"])
        for page in pages
        for target in page["ScalableTargets"]
        if target["ResourceId"].startswith(prefix)
        and target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    }


def check(stage: DeployedStage, assembly: pathlib.Path, say: Callable[[str], None] = print) -> None:
    """Refuse (UserError, one line) a deploy of `assembly` that updates the stage's
    endpoint in a way SageMaker refuses; nothing deployed yet is nothing to check."""
    config = stage.config
    template = json.loads((assembly / f"{config.serving_stack_name}.template.json").read_text())
    deployed = DeployedEndpoint(stage, say)
    try:
        if deployed.endpoint(config.endpoint_name) is None:
            return
        found = check_update(template, config.endpoint_name, deployed, config.account, config.region)
    except Exception as error:  # noqa: BLE001 - the check only brings SageMaker's refusal forward
        say(f"update check: not made ({type(error).__name__}: {error}); SageMaker refuses what it would have itself")
        return
    if found:
        raise UserError(f"Not deploying stage {config.stage}, SageMaker would refuse the update: {found[0]}")
