"""One deployment stage: storage and serving stacks, tagged, under the compliance gate."""

from __future__ import annotations

from aws_cdk import App, Environment, Stage, Tags, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from stacks.config import StageConfig, load_stage_config
from stacks.serving import ServingStack
from stacks.storage import StorageStack


class ModelServingStage(Stage):
    """Everything one stage needs; stack names are `<project>-<stage>-<part>`."""

    def __init__(self, scope: Construct, config: StageConfig) -> None:
        env = Environment(account=config.account, region=config.region)
        super().__init__(scope, config.stage.capitalize(), env=env)
        self.storage = StorageStack(
            self,
            "Storage",
            stack_name=config.storage_stack_name,
            description=f"{config.project} {config.stage}: model artifacts and training data",
            config=config,
            termination_protection=config.retain_data,
        )
        self.serving = ServingStack(
            self,
            "Serving",
            stack_name=config.serving_stack_name,
            description=f"{config.project} {config.stage}: SageMaker model and endpoint",
            config=config,
            storage=self.storage.exports,
            termination_protection=config.retain_data,
        )
        self.serving.add_stack_dependency(self.storage)
        tags = Tags.of(self)
        tags.add("project", config.project)
        tags.add("stage", config.stage)
        for key, value in config.tags:
            tags.add(key, value)
        # The AwsSolutions pack runs at synth; any unacknowledged finding fails it.
        Validations.of(self).add_plugins(AwsSolutionsChecks(self))


def add_stage(
    app: App,
    stage: str,
    *,
    default_account: str | None = None,
    default_region: str | None = None,
) -> ModelServingStage:
    """Validate `stage` from the app's cdk.json context and add it to `app`.

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
    return ModelServingStage(app, config)
