"""One deployment stage: its storage and serving stacks, tagged, under the compliance gate.

The stacks sit at the top of the app, not inside a `cdk.Stage`: the CDK CLI's
`--all` selects only top-level stacks (a Stage's live in a nested assembly),
so `cdk deploy --all -c stage=dev`, `cdk diff -c stage=dev` and
`cdk destroy --all -c stage=dev` act on exactly the chosen stage's two stacks.
Each stack's construct id is its stack name, which is what the CLI prints and
what `cdk deploy <name>` selects.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.config import StageConfig, load_stage_config
from stacks.serving import ServingStack
from stacks.storage import StorageStack


@dataclass(frozen=True)
class StageStacks:
    """The stage's config and its two stacks."""

    config: StageConfig
    storage: StorageStack
    serving: ServingStack


def build_stage(app: App, config: StageConfig) -> StageStacks:
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
        storage=storage.exports,
        termination_protection=config.retain_data,
    )
    serving.add_stack_dependency(storage)
    for stack in (storage, serving):
        tags = Tags.of(stack)
        for key, value in config.resource_tags:
            tags.add(key, value)
    # The AwsSolutions pack runs at synth; any unacknowledged finding fails it.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return StageStacks(config, storage, serving)


def add_stage(
    app: App,
    stage: str,
    *,
    default_account: str | None = None,
    default_region: str | None = None,
) -> StageStacks:
    """Validate `stage` from the app's cdk.json context and add its stacks to `app`.

    `-c artifact=KEY [-c artifact_digest=SHA256]` pins the stage to that artifact
    of its bucket (promotions).
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
    return build_stage(app, config)
