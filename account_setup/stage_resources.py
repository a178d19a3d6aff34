"""One stage's resources as IAM policies name them, for the account setup's roles.

Stack, endpoint and packaging-job names come from the stage's `StageConfig`,
as the app's stacks name them. Two resources of the storage stack carry names
CloudFormation generates, unknown until it is deployed, and changed if it is
ever replaced; importing their exports here would pin the storage stack
(CloudFormation refuses to delete or change an export another stack imports,
so `make destroy` would fail) and could not be deployed before it. So:

- the artifact bucket is matched by the start of its generated name,
  `<storage stack name>-<logical id>-<suffix>` lowercased: `<project>-<stage>-*`,
  in this account only (`s3:ResourceAccount`; bucket names are global).
  CloudFormation shortens the stack part to fit S3's 63 characters, so this
  assumes it keeps `<project>-<stage>` (21 characters for staging); were it
  cut shorter, reads would fail closed (AccessDenied naming the bucket).
  Naming the bucket in the storage stack would let this be exact;
- the promotion role is matched by the `project` and `stage` tags the stage
  puts on every resource (`iam:ResourceTag`, which `sts:AssumeRole` evaluates).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack

from stacks.stage.names import TRAINING_LOG_GROUP
from stacks.stage.schema import ARTIFACTS_PREFIX, StageConfig

# The roles `cdk bootstrap` creates, by the part of their name after the qualifier.
BOOTSTRAP_ROLES = ("deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role")
# The SageMaker resources `make destroy`'s leftover check lists and reads the tags of.
LEFTOVER_KINDS = ("endpoint", "endpoint-config", "model", "training-job")
# Why a pattern stands where IAM would take a name: the reasons of the cdk-nag acknowledgments.
STACK_ID_REASON = "A stack ARN ends in an id CloudFormation assigns; the stack is named exactly."
BUCKET_REASON = (
    "The stage's bucket has a name CloudFormation generates from the storage stack's name, matched "
    "by its start, in this account only (s3:ResourceAccount)."
)
NO_RESOURCE_LEVEL = "has no resource-level permissions (Service Authorization Reference): '*' is its only resource."
ARTIFACTS_REASON = f"{BUCKET_REASON} The artifact's key is the serving stack's output, under '{ARTIFACTS_PREFIX}'."


def stack_arn(stack: Stack, name: str) -> str:
    """A CloudFormation stack by name; its ARN ends in an id CloudFormation assigns."""
    return stack.format_arn(service="cloudformation", resource="stack", resource_name=f"{name}/*")


def bootstrap_role_arns(stack: Stack, qualifier: str) -> list[str]:
    """This account's CDK bootstrap roles, for this region."""
    return [
        stack.format_arn(
            service="iam",
            region="",
            resource="role",
            resource_name=f"cdk-{qualifier}-{kind}-{stack.account}-{stack.region}",
        )
        for kind in BOOTSTRAP_ROLES
    ]


def bucket_pattern(stack: Stack, config: StageConfig) -> str:
    """The stage's artifact bucket (and its access-log bucket), by the start of the name
    CloudFormation generates from the storage stack's name."""
    return f"arn:{stack.partition}:s3:::{config.endpoint_name.lower()}-*"


def artifacts_pattern(stack: Stack, config: StageConfig) -> str:
    """Every artifact of the stage's bucket: packaged, pinned and promoted ones."""
    return f"{bucket_pattern(stack, config)}/{ARTIFACTS_PREFIX}*"


def in_this_account(stack: Stack) -> dict:
    """Condition: the bucket is owned by this account (a name pattern alone could match another's)."""
    return {"StringEquals": {"s3:ResourceAccount": stack.account}}


def promotion_role_tags(config: StageConfig) -> dict:
    """Condition: the role carries the stage's `project` and `stage` tags."""
    return {"StringEquals": {"iam:ResourceTag/project": config.project, "iam:ResourceTag/stage": config.stage}}


def sagemaker_arn(stack: Stack, kind: str, name: str) -> str:
    # SageMaker writes names in lowercase in its ARNs, which IAM matches case-sensitively.
    return stack.format_arn(service="sagemaker", resource=kind, resource_name=name.lower())


def training_log_group_arn(stack: Stack) -> str:
    """The packaging jobs' log group, in the form IAM matches for group-level actions (`:*`)."""
    return stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{TRAINING_LOG_GROUP}:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
