"""One deployment stage: its storage and serving stacks, tagged, under the compliance gate.

The stacks sit at the top of the app, not inside a `cdk.Stage`: the CDK CLI's
`--all` selects only top-level stacks (a Stage's live in a nested assembly),
so `cdk deploy --all -c stage=dev`, `cdk diff -c stage=dev` and
`cdk destroy --all -c stage=dev` act on exactly the chosen stage's two stacks.
Each stack's construct id is its stack name, which is what the CLI prints and
what `cdk deploy <name>` selects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aws_cdk import Annotations, App, Aspects, Environment, Tags, Validations, cx_api
from cdk_nag import AwsSolutionsChecks

from stacks.compliance.lambdas import LambdasAndTheirLogs
from stacks.rulebook import Violation
from stacks.rulebook.templates import check_stage
from stacks.serving.stack import ServingStack
from stacks.stage import images
from stacks.stage.config import load_stage_config
from stacks.stage.schema import StageConfig
from stacks.storage.stack import StorageStack


@dataclass(frozen=True)
class StageStacks:
    """The stage's config and its two stacks."""

    config: StageConfig
    storage: StorageStack
    serving: ServingStack

    def rule_violations(self, assembly: cx_api.CloudAssembly) -> list[Violation]:
        """The SageMaker rules the synthesized templates break (`stacks/rulebook`)."""
        return check_stage(
            assembly.get_stack_by_name(self.serving.stack_name).template, self.config.account, self.config.region
        )


def build_stage(app: App, config: StageConfig, today: dt.date | None = None) -> StageStacks:
    """Add the stage's stacks to `app`; stack names are `<project>-<stage>-<part>`."""
    env = Environment(account=config.account, region=config.region)
    storage = StorageStack(
        app,
        config.storage_stack_name,
        stack_name=config.storage_stack_name,
        env=env,
        description=f"{config.project} {config.stage}: model artifacts and training data",
        config=config,
        termination_protection=config.retain_data,
    )
    serving = ServingStack(
        app,
        config.serving_stack_name,
        stack_name=config.serving_stack_name,
        env=env,
        description=f"{config.project} {config.stage}: SageMaker model and endpoint",
        config=config,
        names=storage.names,
        termination_protection=config.retain_data,
    )
    serving.add_stack_dependency(storage)
    for stack in (storage, serving):
        Aspects.of(stack).add(LambdasAndTheirLogs())
        tags = Tags.of(stack)
        for key, value in config.resource_tags:
            tags.add(key, value)
    # The AwsSolutions pack runs at synth; any unacknowledged finding fails it.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    # A warning, not an error: the images still serve, but get no more patches.
    for line in images.out_of_patch(today) if today else []:
        Annotations.of(serving).add_warning_v2("tfhub:image-patch-window", line)
    return StageStacks(config, storage, serving)


def add_stage(
    app: App,
    stage: str,
    *,
    default_account: str | None = None,
    default_region: str | None = None,
    today: dt.date | None = None,
) -> StageStacks:
    """Validate `stage` from the app's cdk.json context and add its stacks to `app`.

    `-c artifact=KEY [-c artifact_digest=SHA256]` pins the stage to that artifact
    of its bucket (promotions). With `today`, a pinned image past its patch
    window is a synth warning.
    Raises `ConfigError` before any construct is created.
    """
    context = {key: app.node.try_get_context(key) for key in ("project", "stages")}
    config = load_stage_config(
        context,
        stage,
        default_account=default_account,
        default_region=default_region,
        artifact=app.node.try_get_context("artifact"),
        artifact_digest=app.node.try_get_context("artifact_digest"),
    )
    return build_stage(app, config, today)
