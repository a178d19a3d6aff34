"""The role the reviewed stage's preview environment reads it with (that environment's AWS_PREVIEW_ROLE_ARN).

A prod deploy waits for its reviewers in the GitHub environment `prod`, whose
credentials exist only once they approve. What they should see first, what
the assembly the job would deploy changes in prod's two stacks, is computed
before that by a job of the environment `prod-preview` (no reviewers) with
this role: `cdk diff --method template` of the built assembly (`--no-change-set`
in the CLI's older spelling), which reads each stack's deployed template and
nothing else.

How the CDK CLI reads them: the `cdk diff` reference of the CDK v2 Developer
Guide says the template method "uses the lookup role"; the CLI tries the
bootstrap's lookup role first and, where the credentials cannot assume it but
belong to the stack's account, proceeds with them (aws-cdk pull request
#18277; the pinned CLI's SdkProvider warns "... but are for the right account.
Proceeding anyway."), calling `cloudformation:DescribeStacks` (does the stack
exist) and `GetTemplate` (its original template) per stack, and nothing else
(`tests/account_setup/test_preview.py` runs it). The lookup role carries AWS's
ReadOnlyAccess (the CDK bootstrap template, since bootstrap version 8 as
#18277 says): every object of every bucket in the account, data capture
included, for a job nobody approves. So this role may not assume it, and may
only make those two calls, on the stage's two stacks; the CLI's warnings
about the lookup role are expected in the job's output.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from account_setup import stage_resources as res
from account_setup.github_trust import github_environment
from account_setup.settings import AccessSettings
from stacks.compliance.nag import acknowledge_wildcards


class PreviewRole(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: AccessSettings, provider_arn: str) -> None:
        super().__init__(scope, construct_id)
        config, subject = settings.config, settings.preview_oidc_subject
        if subject is None:
            raise ValueError(f"stage {config.stage} waits for no reviewer: it has no preview environment")
        self.role = iam.Role(
            self,
            "Role",
            role_name=settings.preview_role_name,
            assumed_by=github_environment(provider_arn, subject),
            description=f"GitHub Actions, environment {settings.preview_environment} of {settings.github_repo}: "
            f"reads the deployed templates of {config.stage}'s stacks for the cdk diff its reviewers see",
        )
        stack = Stack.of(self)
        stacks = [res.stack_arn(stack, name) for name in (config.storage_stack_name, config.serving_stack_name)]
        policy = iam.Policy(
            self,
            "Permissions",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadTheDeployedTemplates",
                    actions=["cloudformation:DescribeStacks", "cloudformation:GetTemplate"],
                    resources=stacks,
                )
            ],
        )
        acknowledge_wildcards(policy, {arn: res.STACK_ID_REASON for arn in stacks})
