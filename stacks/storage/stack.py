"""The stage's stateful storage: artifact bucket, its access-log bucket, the
placeholder training data the packaging job's `train` channel needs, and the
two roles that may write artifacts, which the bucket policy names: the
packaging job's and the promotion's (`bucket_guard.py`).

It lives in its own stack so the serving stack can be destroyed and rebuilt
without touching model artifacts.
"""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import Acknowledgment, CfnResource, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from stacks.compliance import checkov
from stacks.cost_guard.construct import IdleTeardown
from stacks.model_packaging.packaging_role import PackagingRole
from stacks.stage.images import training_image
from stacks.stage.names import PACKAGING_PREFIX
from stacks.stage.schema import StageConfig
from stacks.storage.bucket_guard import guard_writes
from stacks.storage.promotion_role import PromotionRole

TRAINING_DATA_PREFIX = "trainingData/"
TRAINING_DATA_KEY = f"{TRAINING_DATA_PREFIX}train/train.csv"
# The seed's job ignores this file; SageMaker only needs the channel to exist.
_PLACEHOLDER_CSV = "placeholder\n"

NONCURRENT_VERSION_DAYS = 30
ACCESS_LOG_DAYS = 90
_INCOMPLETE_UPLOAD_DAYS = 7


class ArtifactStore(Construct):
    """Versioned, encrypted, SSL-only bucket for artifacts and training inputs."""

    def __init__(self, scope: Construct, construct_id: str, *, retain: bool) -> None:
        super().__init__(scope, construct_id)
        # What both buckets share. auto_delete_objects empties a bucket before
        # CloudFormation deletes it; without it `cdk destroy` of a non-empty
        # dev bucket fails.
        common: dict[str, Any] = dict(
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            auto_delete_objects=not retain,
        )
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(ACCESS_LOG_DAYS),
                    noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
                )
            ],
            **common,
        )
        checkov.skip(
            self.access_logs,
            {
                "CKV_AWS_18": "This is the server access log destination; logging it would only log the logger.",
            },
        )
        Validations.of(self.access_logs).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This is the server access log destination; logging it into "
                "itself or a third bucket would only log the logger.",
            )
        )

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifact-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(_INCOMPLETE_UPLOAD_DAYS),
                )
            ],
            **common,
        )

        self._put_placeholder_training_data()

    def _put_placeholder_training_data(self) -> None:
        put = cr.AwsSdkCall(
            service="s3",
            action="PutObject",
            parameters={
                "Bucket": self.bucket.bucket_name,
                "Key": TRAINING_DATA_KEY,
                "Body": _PLACEHOLDER_CSV,
            },
            physical_resource_id=cr.PhysicalResourceId.of(TRAINING_DATA_KEY),
        )
        cr.AwsCustomResource(
            self,
            "PlaceholderTrainingData",
            on_create=put,
            on_update=put,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["s3:PutObject"],
                        resources=[self.bucket.arn_for_objects(TRAINING_DATA_KEY)],
                    )
                ]
            ),
            install_latest_aws_sdk=False,
        )


def _auto_delete_provider(stack: Stack) -> IConstruct | None:
    # CDK's auto-delete-objects provider is a stack-wide singleton (only with auto_delete_objects).
    return stack.node.try_find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")


def _auto_delete_role(stack: Stack) -> str | None:
    """The ARN of the role that empties the bucket on `cdk destroy`, when the stage has one."""
    provider = _auto_delete_provider(stack)
    if provider is None:
        return None
    return cast(CfnResource, provider.node.find_child("Role")).get_att("Arn").to_string()


class StorageStack(Stack):
    """Composes the artifact store, its write guard and the roles that may write it."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.store = ArtifactStore(self, "Artifacts", retain=config.retain_data)
        bucket = self.store.bucket
        packaging = None
        if config.packaging:
            packaging = PackagingRole(
                self,
                "PackagingRole",
                bucket=bucket,
                job_name_prefix=config.job_name_prefix,
                image=training_image(config.region, config.packaging.instance_type),
                training_data_prefix=TRAINING_DATA_PREFIX,
                output_prefix=PACKAGING_PREFIX,
                volume_key_arn=config.packaging.volume_kms_key_arn,
            )
        promotion = PromotionRole(self, "PromotionRole", bucket=bucket, promoters=config.promoters, stage=config.stage)
        guard_writes(
            bucket,
            promotion_role=promotion.role.role_arn,
            packaging_role=packaging.role.role_arn if packaging else None,
            auto_delete_role=_auto_delete_role(self),
        )
        self.names = config.names
        self.export_value(bucket.bucket_name, name=self.names.bucket_name_export)
        self.export_value(bucket.bucket_arn, name=self.names.bucket_arn_export)
        self.export_value(promotion.role.role_arn, name=self.names.promotion_role_export)
        if packaging:
            self.export_value(packaging.role.role_arn, name=self.names.packaging_role_export)
        if config.idle_teardown_hours:
            IdleTeardown(
                self,
                "IdleTeardown",
                endpoint_name=config.endpoint_name,
                serving_stack=config.serving_stack_name,
                idle_hours=config.idle_teardown_hours,
            )
