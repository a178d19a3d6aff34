"""The role the next stage's CI reads this stage with (the next stage's SOURCE_READ_ROLE_ARN).

`make promote FROM=<this stage> TO=<next>` runs in the next stage's account and
assumes this role for every read of its source: the serving stack's
`ArtifactLocation` and `TreeDigest` outputs, the bucket's name by its export
(the artifact must lie where only this stage's own writers put it), then the
artifact itself, listed (an uncompressed prefix) and read file by file. From a
stage that serves promoted copies (staging), the promotion also checks this
stage verified the digest: it reads the promotion log. It writes nothing here.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from account_setup import stage_resources as res
from account_setup.settings import AccessSettings, deploy_role_name
from stacks.compliance.nag import acknowledge_wildcards
from stacks.stage.schema import ARTIFACTS_PREFIX
from stacks.storage.promotion_role import RECORDS_PREFIX


class SourceReadRole(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: AccessSettings) -> None:
        super().__init__(scope, construct_id)
        config, reader = settings.config, settings.reader
        if reader is None:
            raise ValueError(f"stage {config.stage} has no next stage to read it")
        stack = Stack.of(self)
        self.reader_arn = stack.format_arn(
            service="iam",
            region="",
            account=reader.account,
            resource="role",
            resource_name=deploy_role_name(config.project, reader.stage),
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=settings.read_role_name,
            # The reader's account, narrowed to exactly its deploy role by ARN. Naming the
            # role as the principal instead would make IAM refuse this trust policy until
            # that role exists, and silently stop matching if it is ever recreated.
            assumed_by=iam.PrincipalWithConditions(
                iam.AccountPrincipal(reader.account), {"ArnEquals": {"aws:PrincipalArn": self.reader_arn}}
            ),
            description=f"make promote FROM={config.stage} TO={reader.stage}, run by {reader.stage}'s CI: "
            f"reads this stage's serving outputs and artifacts",
        )
        serving = res.stack_arn(stack, config.serving_stack_name)
        bucket, artifacts = res.bucket_pattern(stack, config), res.artifacts_pattern(stack, config)
        readable = [ARTIFACTS_PREFIX]
        statements = [
            iam.PolicyStatement(
                sid="ReadTheServingOutputs", actions=["cloudformation:DescribeStacks"], resources=[serving]
            ),
            iam.PolicyStatement(sid="FindTheBucket", actions=["cloudformation:ListExports"], resources=["*"]),
            iam.PolicyStatement(
                sid="ReadTheArtifacts",
                actions=["s3:GetObject"],
                resources=[artifacts],
                conditions=res.in_this_account(stack),
            ),
        ]
        reasons = {
            serving: res.STACK_ID_REASON,
            artifacts: res.ARTIFACTS_REASON,
            "*": f"cloudformation:ListExports {res.NO_RESOURCE_LEVEL}",
        }
        # As promote.py: a stage without a packaging job of its own serves promoted copies.
        if config.packaging is None:
            records = f"{bucket}/{RECORDS_PREFIX}*.json"
            readable.append(RECORDS_PREFIX)
            statements += [
                iam.PolicyStatement(
                    sid="ReadThePromotionLog",
                    actions=["s3:GetObject"],
                    resources=[records],
                    conditions=res.in_this_account(stack),
                ),
            ]
            reasons[records] = (
                f"{res.BUCKET_REASON} Promotion records are numbered as promotions happen, "
                f"'{RECORDS_PREFIX}<number>-<time>-<digest>.json'."
            )
        statements.append(
            iam.PolicyStatement(
                sid="ListWhatItReads",
                actions=["s3:ListBucket"],
                resources=[bucket],
                conditions={
                    **res.in_this_account(stack),
                    "StringLike": {"s3:prefix": [f"{prefix}*" for prefix in readable]},
                },
            )
        )
        reasons[bucket] = f"{res.BUCKET_REASON} Listing is limited to the prefixes it reads."
        policy = iam.Policy(self, "Permissions", roles=[self.role], statements=statements)
        acknowledge_wildcards(policy, reasons)
