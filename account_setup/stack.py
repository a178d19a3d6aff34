"""One stage account's CI access: `<project>-<stage>-ci-access`, under the compliance gate.

GitHub's OIDC provider (or the account's existing one), the deploy role,
where a later stage promotes from this one, that stage's read role, and where
a deploy waits for reviewers, the preview role; outputs name each value a
GitHub environment variable takes.
"""

from __future__ import annotations

from aws_cdk import App, CfnOutput, CliCredentialsStackSynthesizer, Environment, Stack, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from account_setup.deploy_role import DeployRole
from account_setup.preview_role import PreviewRole
from account_setup.read_role import SourceReadRole
from account_setup.settings import GITHUB_OIDC_AUDIENCE, GITHUB_OIDC_HOST, AccessSettings


class CiAccessStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: AccessSettings, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        stage = settings.config.stage
        provider_arn = (
            settings.oidc_provider_arn
            or iam.OidcProviderNative(
                self, "GitHubOidcProvider", url=f"https://{GITHUB_OIDC_HOST}", client_ids=[GITHUB_OIDC_AUDIENCE]
            ).oidc_provider_arn
        )
        deploy = DeployRole(self, "DeployRole", settings=settings, provider_arn=provider_arn)
        CfnOutput(
            self,
            "DeployRoleArn",
            value=deploy.role.role_arn,
            description=f"GitHub environment {stage}: AWS_DEPLOY_ROLE_ARN",
        )
        preview = settings.preview_environment
        # The preview environment's job runs in the stage's account and region too.
        environments = f"environments {stage} and {preview}" if preview else f"environment {stage}"
        CfnOutput(self, "AccountId", value=self.account, description=f"GitHub {environments}: AWS_ACCOUNT_ID")
        reader = f"; environment {settings.reader.stage}: SOURCE_REGION" if settings.reader else ""
        CfnOutput(self, "Region", value=self.region, description=f"GitHub {environments}: AWS_REGION{reader}")
        CfnOutput(
            self,
            "OidcProviderArn",
            value=provider_arn,
            description="GitHub's OIDC provider in this account (-c oidc_provider_arn for another stage here)",
        )
        if preview:
            preview_role = PreviewRole(self, "PreviewRole", settings=settings, provider_arn=provider_arn)
            CfnOutput(
                self,
                "PreviewRoleArn",
                value=preview_role.role.role_arn,
                description=f"GitHub environment {preview}: AWS_PREVIEW_ROLE_ARN",
            )
        if settings.reader:
            read = SourceReadRole(self, "SourceReadRole", settings=settings)
            CfnOutput(
                self,
                "SourceReadRoleArn",
                value=read.role.role_arn,
                description=f"GitHub environment {settings.reader.stage}: SOURCE_READ_ROLE_ARN",
            )


def add_ci_access(app: App, settings: AccessSettings) -> CiAccessStack:
    """Add the stage's CI access stack to `app`, with the AwsSolutions pack as a
    validation plugin: any unacknowledged finding fails synth (as `stacks/compose.py`)."""
    config = settings.config
    stack = CiAccessStack(
        app,
        settings.stack_name,
        stack_name=settings.stack_name,
        env=Environment(account=config.account, region=config.region),
        description=f"{config.project} {config.stage}: GitHub Actions OIDC access for CI",
        settings=settings,
        # Deployed with the administrator's own credentials, not through the bootstrap roles
        # CI uses (only the bootstrap's bucket carries the template): so the account's
        # CloudFormation execution policy may deny every change to CI's own access.
        synthesizer=CliCredentialsStackSynthesizer(qualifier=settings.bootstrap_qualifier),
        # Deleting it cuts CI off from the account (and removes the OIDC provider);
        # that should take a deliberate step.
        termination_protection=True,
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack
