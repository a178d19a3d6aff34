"""The role a stage's GitHub environment deploys with (its AWS_DEPLOY_ROLE_ARN).

Trusted only through GitHub's OIDC provider, for a token whose audience is
STS and whose subject is exactly the repository's job in the stage's
environment. Its own permissions are what CI's make targets do with the
job's credentials, one policy per tool, each action on this stage's
resources where IAM allows naming them:

- `make deploy` (and the deploy inside `make promote`): the CDK CLI assumes
  the account's bootstrap roles, which do the rest;
- `make smoke`, `make digest`, and the smoke test and state report inside
  `make promote`: the serving stack's outputs, the served artifact's
  manifest, the endpoint;
- `make promote` into a stage that has a source: the target's exports (its
  bucket and promotion role), then the promotion role for every write, and
  the source stage's read role in the source's account for every read;
- `make logs` on a stage that packages: its jobs and their log lines;
- `make destroy`'s leftover check: the account's SageMaker resources and tags.

`sts:GetCallerIdentity`, with which the tools check the account, needs no permission.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from account_setup import stage_resources as res
from account_setup.github_trust import github_environment
from account_setup.settings import AccessSettings, read_role_name
from stacks.compliance.nag import acknowledge_wildcards

# The longest session a CI job may ask for (its `role-duration-seconds`). An OIDC
# session cannot be refreshed, and the CDK CLI assumes the bootstrap deploy role
# again with it while it waits on CloudFormation, so it must outlast the longest
# deploy plus the rollback of a failed one: a promotion's blue/green update and
# then its rollback, each up to an hour with prod's canary (baking, termination
# wait, instance starts), or dev's packaging job within CloudFormation's hour for
# a custom resource, then the endpoint update. 3 hours.
MAX_SESSION = Duration.hours(3)


class DeployRole(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: AccessSettings, provider_arn: str) -> None:
        super().__init__(scope, construct_id)
        config = settings.config
        self.role = iam.Role(
            self,
            "Role",
            role_name=settings.deploy_role_name,
            assumed_by=github_environment(provider_arn, settings.oidc_subject),
            max_session_duration=MAX_SESSION,
            description=f"GitHub Actions, environment {config.stage} of {settings.github_repo}: deploys, "
            "smoke-tests and promotes into this stage",
        )
        stack = Stack.of(self)
        self._deploy(stack, settings)
        self._smoke_and_digest(stack, settings)
        if settings.source:
            self._promote(stack, settings)
        if config.packaging:
            self._follow_logs(stack, settings)
        self._leftover_check(stack)

    def _policy(self, construct_id: str, *statements: iam.PolicyStatement) -> iam.Policy:
        return iam.Policy(self, construct_id, roles=[self.role], statements=list(statements))

    def _deploy(self, stack: Stack, settings: AccessSettings) -> None:
        config = settings.config
        configs = res.sagemaker_arn(stack, "endpoint-config", "*")
        policy = self._policy(
            "Deploy",
            iam.PolicyStatement(
                sid="AssumeTheCdkBootstrapRoles",
                actions=["sts:AssumeRole"],
                resources=res.bootstrap_role_arns(stack, settings.bootstrap_qualifier),
            ),
            # The update check before each deploy (delivery/preflight.py), which the
            # deploy's progress lines read too.
            iam.PolicyStatement(
                sid="CheckTheUpdate",
                actions=["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"],
                resources=[res.sagemaker_arn(stack, "endpoint", config.endpoint_name), configs],
            ),
            iam.PolicyStatement(
                sid="ReadTheScaling", actions=["application-autoscaling:DescribeScalableTargets"], resources=["*"]
            ),
        )
        acknowledge_wildcards(
            policy,
            {
                configs: "Endpoint configs have names CloudFormation generates; the check reads the one "
                "the stage's endpoint names.",
                "*": f"application-autoscaling:DescribeScalableTargets {res.NO_RESOURCE_LEVEL}",
            },
        )

    def _smoke_and_digest(self, stack: Stack, settings: AccessSettings) -> None:
        config = settings.config
        serving = res.stack_arn(stack, config.serving_stack_name)
        artifacts = res.artifacts_pattern(stack, config)
        policy = self._policy(
            "SmokeAndDigest",
            iam.PolicyStatement(
                sid="ReadTheServingOutputs", actions=["cloudformation:DescribeStacks"], resources=[serving]
            ),
            iam.PolicyStatement(
                sid="ReadTheServedManifest",
                actions=["s3:GetObject"],
                resources=[artifacts],
                conditions=res.in_this_account(stack),
            ),
            iam.PolicyStatement(
                sid="CallTheEndpoint",
                actions=["sagemaker:InvokeEndpoint"],
                resources=[res.sagemaker_arn(stack, "endpoint", config.endpoint_name)],
            ),
        )
        acknowledge_wildcards(
            policy,
            {
                serving: res.STACK_ID_REASON,
                artifacts: res.ARTIFACTS_REASON,
            },
        )

    def _promote(self, stack: Stack, settings: AccessSettings) -> None:
        config, source = settings.config, settings.source
        if source is None:
            return  # the first stage promotes from nowhere
        roles = stack.format_arn(service="iam", region="", resource="role", resource_name="*")
        policy = self._policy(
            "Promote",
            iam.PolicyStatement(
                sid="FindTheBucketAndPromotionRole", actions=["cloudformation:ListExports"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="AssumeThePromotionRole",
                actions=["sts:AssumeRole"],
                resources=[roles],
                conditions=res.promotion_role_tags(config),
            ),
            iam.PolicyStatement(
                sid="AssumeTheSourceReadRole",
                actions=["sts:AssumeRole"],
                resources=[
                    stack.format_arn(
                        service="iam",
                        region="",
                        account=source.account,
                        resource="role",
                        resource_name=read_role_name(config.project, source.stage),
                    )
                ],
            ),
        )
        acknowledge_wildcards(
            policy,
            {
                "*": f"cloudformation:ListExports {res.NO_RESOURCE_LEVEL}",
                roles: "The promotion role's name is generated by CloudFormation in the storage stack; the "
                f"statement holds only for roles tagged project={config.project} and stage={config.stage}, of "
                "which only the promotion role trusts this account (the others trust AWS services).",
            },
        )

    def _follow_logs(self, stack: Stack, settings: AccessSettings) -> None:
        config = settings.config
        stacks = [res.stack_arn(stack, name) for name in (config.storage_stack_name, config.serving_stack_name)]
        jobs = res.sagemaker_arn(stack, "training-job", f"{config.job_name_prefix}-*")
        log_group = res.training_log_group_arn(stack)
        policy = self._policy(
            "FollowLogs",
            iam.PolicyStatement(
                sid="SeeTheDeployUnderWay", actions=["cloudformation:DescribeStacks"], resources=stacks
            ),
            iam.PolicyStatement(sid="FindThePackagingJobs", actions=["sagemaker:ListTrainingJobs"], resources=["*"]),
            iam.PolicyStatement(
                sid="WatchThePackagingJobs", actions=["sagemaker:DescribeTrainingJob"], resources=[jobs]
            ),
            iam.PolicyStatement(sid="ReadThePackagingLogs", actions=["logs:FilterLogEvents"], resources=[log_group]),
        )
        acknowledge_wildcards(
            policy,
            {
                **{arn: res.STACK_ID_REASON for arn in stacks},
                "*": f"sagemaker:ListTrainingJobs {res.NO_RESOURCE_LEVEL}",
                jobs: "Packaging jobs are named '<stage prefix>-<digest>' by the deploy that starts them.",
                log_group: "SageMaker writes every training job's log streams into this one group, and "
                "logs:FilterLogEvents authorizes per group, in the ARN form ending ':*'.",
            },
        )

    def _leftover_check(self, stack: Stack) -> None:
        kinds = {kind: res.sagemaker_arn(stack, kind, "*") for kind in res.LEFTOVER_KINDS}
        policy = self._policy(
            "LeftoverCheck",
            iam.PolicyStatement(
                sid="ListSageMakerResources",
                actions=[
                    "sagemaker:ListEndpoints",
                    "sagemaker:ListEndpointConfigs",
                    "sagemaker:ListModels",
                    "sagemaker:ListTrainingJobs",
                ],
                resources=["*"],
            ),
            iam.PolicyStatement(sid="ReadTheirTags", actions=["sagemaker:ListTags"], resources=list(kinds.values())),
        )
        acknowledge_wildcards(
            policy,
            {
                "*": f"The SageMaker List actions {res.NO_RESOURCE_LEVEL}",
                **{
                    arn: f"The leftover check reads the tags of every {kind} it lists in this account and region: "
                    "tags, not names (models and configs have generated ones), tell which are the stage's."
                    for kind, arn in kinds.items()
                },
            },
        )
