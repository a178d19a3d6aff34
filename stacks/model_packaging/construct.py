"""Packaging on deploy: a custom resource that runs the packaging training job.

CloudFormation cannot run a SageMaker training job, so CDK's Provider framework
does: `stacks/model_packaging/handler_asset/packaging_handler/handler.py` starts the job (on_event) and waits
for it (is_complete), and the resource's attributes carry the artifact's S3
key and tree digest to the Model. The job's source is `packaging_job/`,
shipped as a reproducible tar.gz asset.
"""

from __future__ import annotations

import json
import pathlib

from aws_cdk import Acknowledgment, CustomResource, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from packaging_job.packager.manifest import MANIFEST_NAME
from stacks.compliance import checkov
from stacks.compliance.lambdas import lambda_role, log_group, python_function
from stacks.compliance.nag import acknowledge_wildcards
from stacks.model_packaging import source_archive
from stacks.model_packaging.handler_asset.packaging_handler.job_request import RESOURCE_TYPE, Attribute, Property
from stacks.model_packaging.job_contract import job_contract
from stacks.stage.images import SERVING_TF_VERSION, training_image
from stacks.stage.names import PACKAGING_PREFIX
from stacks.stage.schema import ModelConfig, PackagingConfig
from stacks.stage.settings import JOB_OVERHEAD_MINUTES, LIMIT_BOUNDS
from stacks.storage.stack import TRAINING_DATA_KEY

ROOT = pathlib.Path(__file__).resolve().parents[2]
JOB_SOURCE = ROOT / "packaging_job"
# The Lambda asset is the folder holding the handler package, so the package's
# modules import each other the same way in the Lambda and in synth and tests.
HANDLER_SOURCE = pathlib.Path(__file__).resolve().parent / "handler_asset"
# The `train` channel: the folder of the placeholder file.
TRAIN_PREFIX = TRAINING_DATA_KEY.rsplit("/", 1)[0] + "/"
QUERY_INTERVAL = Duration.seconds(30)
# CloudFormation gives up on a custom resource after an hour whatever is set.
SERVICE_TIMEOUT_MARGIN_MINUTES = 5


def timeouts(settings: PackagingConfig) -> tuple[Duration, Duration]:
    """(Provider total timeout, custom resource service timeout), both under an hour."""
    total = settings.budget_minutes + JOB_OVERHEAD_MINUTES
    return Duration.minutes(total), Duration.minutes(total + SERVICE_TIMEOUT_MARGIN_MINUTES)


class PackagingJob(Construct):
    """Runs the packaging job on deploy; `artifact_key` and `tree_digest` are its results.

    `settings` and `model` say what to package and how; the job is named
    `<job_name_prefix>-<digest of its inputs>`, runs as `role`, writes into
    `bucket` in the form `compression` names (GZIP for serverless, whose memory
    `serverless_memory_mb` must hold the model) and tags what it creates."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PackagingConfig,
        model: ModelConfig,
        region: str,
        job_name_prefix: str,
        compression: str,
        serverless_memory_mb: int | None,
        tags: tuple[tuple[str, str], ...],
        bucket: s3.IBucket,
        role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        image = training_image(region, settings.instance_type)
        archive, archive_digest = source_archive.build(JOB_SOURCE)
        source = s3_assets.Asset(self, "Source", path=str(archive))
        # The job reads its own source; nothing else in the assets bucket.
        source_read = iam.Policy(
            self,
            "SourceRead",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[source.bucket.arn_for_objects(source.s3_object_key)],
                )
            ],
        )

        job_arns = stack.format_arn(service="sagemaker", resource="training-job", resource_name=f"{job_name_prefix}-*")
        manifests = bucket.arn_for_objects(f"{PACKAGING_PREFIX}{job_name_prefix}-*")
        handler_role = lambda_role(self, "HandlerRole")
        handler_policy = iam.Policy(
            self,
            "HandlerPermissions",
            roles=[handler_role],
            statements=[
                iam.PolicyStatement(
                    sid="RunThisStagesJobs",
                    actions=[
                        "sagemaker:AddTags",
                        "sagemaker:CreateTrainingJob",
                        "sagemaker:DescribeTrainingJob",
                        "sagemaker:StopTrainingJob",
                    ],
                    resources=[job_arns],
                ),
                iam.PolicyStatement(
                    sid="PassThePackagingRoleToSageMaker",
                    actions=["iam:PassRole"],
                    resources=[role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                ),
                iam.PolicyStatement(sid="ReadJobManifests", actions=["s3:GetObject"], resources=[manifests]),
            ],
        )
        acknowledge_wildcards(
            handler_policy,
            {
                job_arns: "Job names end in a digest of the inputs, chosen at deploy time; the "
                "wildcard covers only this stage's job-name prefix.",
                manifests: "Each job writes its manifest under a folder named after the job; "
                "the wildcard covers only this stage's job folders.",
            },
        )

        total_timeout, service_timeout = timeouts(settings)
        on_event = python_function(
            self,
            "OnEvent",
            source=HANDLER_SOURCE,
            handler="packaging_handler.handler.on_event",
            role=handler_role,
            environment={"MANIFEST_NAME": MANIFEST_NAME, **job_contract().environment()},
        )
        is_complete = python_function(
            self,
            "IsComplete",
            source=HANDLER_SOURCE,
            handler="packaging_handler.handler.is_complete",
            role=handler_role,
            # Reading the manifest may stream a whole model.tar.gz from S3 (SageMaker
            # chooses the members' order): Lambda's longest run, and at 1769 MB the one
            # full vCPU that gunzip needs (Lambda's memory/CPU table), so a model of a
            # few GB is read in a minute or two rather than timing out on every poll.
            timeout=Duration.minutes(15),
            memory_mb=1769,
            # Stop the job before the Provider gives up, rather than rely on a later Delete.
            environment={
                "WAIT_LIMIT_SECONDS": str(int(total_timeout.to_seconds() - 2 * QUERY_INTERVAL.to_seconds())),
                "MANIFEST_NAME": MANIFEST_NAME,
            },
        )
        for function in (on_event, is_complete):
            function.node.add_dependency(handler_policy)

        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=on_event,
            is_complete_handler=is_complete,
            query_interval=QUERY_INTERVAL,
            total_timeout=total_timeout,
            log_group=log_group(self, "ProviderLogs"),
            disable_waiter_state_machine_logging=False,
            # The waiter's execution data holds the presigned response URL: keep it out.
            waiter_state_machine_log_options=cr.LogOptions(
                destination=log_group(self, "WaiterLogs"),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )
        self._acknowledge_provider(provider, [on_event, is_complete])
        waiter_policy = (
            provider.node.find_child("waiter-state-machine").node.find_child("Role").node.find_child("DefaultPolicy")
        )
        checkov.skip(
            waiter_policy,
            {
                "CKV_AWS_111": "CDK's Provider waiter needs CloudWatch Logs' log-delivery APIs, which have "
                "no resource-level permissions.",
            },
        )

        self.resource = CustomResource(
            self,
            "Job",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            service_timeout=service_timeout,
            properties={
                Property.JOB_NAME_PREFIX: job_name_prefix,
                Property.ROLE_ARN: role.role_arn,
                Property.TRAINING_IMAGE: image.uri,
                Property.SOURCE_URI: source.s3_object_url,
                Property.SOURCE_DIGEST: archive_digest,
                Property.HUB_HANDLE: model.hub_handle,
                Property.HUB_SHA256: model.hub_sha256 or "",
                Property.LIMITS: {key: getattr(settings.limits, key) for key in LIMIT_BOUNDS},
                Property.MODEL_NAME: model.name,
                Property.MODEL_VERSION: model.version,
                Property.SIGNATURE: settings.signature,
                Property.SAMPLE_INPUT: json.dumps(settings.sample_input) if settings.sample_input is not None else "",
                Property.VERIFY_LOAD: settings.verify_load,
                Property.SERVING_TF_VERSION: SERVING_TF_VERSION,
                Property.TRAIN_URI: f"s3://{bucket.bucket_name}/{TRAIN_PREFIX}",
                Property.OUTPUT_URI: f"s3://{bucket.bucket_name}/{PACKAGING_PREFIX}",
                Property.INSTANCE_TYPE: settings.instance_type,
                Property.VOLUME_SIZE_GB: settings.volume_gb,
                Property.MAX_RUNTIME_SECONDS: settings.max_runtime_minutes * 60,
                Property.SPOT_MAX_WAIT_SECONDS: (settings.spot_max_wait_minutes or 0) * 60 or "",
                Property.VOLUME_KMS_KEY_ARN: settings.volume_kms_key_arn or "",
                Property.TAGS: dict(tags),
                Property.COMPRESSION_TYPE: compression,
                Property.SERVERLESS_MEMORY_MB: serverless_memory_mb or "",
            },
        )
        # The job must be able to read its source and pass its role when it starts.
        self.resource.node.add_dependency(source_read, handler_policy)
        self.image = image
        self.artifact_key = self.resource.get_att_string(Attribute.ARTIFACT_KEY)
        self.tree_digest = self.resource.get_att_string(Attribute.TREE_DIGEST)
        self.job_name = self.resource.get_att_string(Attribute.TRAINING_JOB_NAME)

    def _acknowledge_provider(self, provider: cr.Provider, handlers: list[lambda_.Function]) -> None:
        # The framework's functions and waiter may invoke any version of the
        # functions they chain: `function:NAME:*`.
        framework = _framework_functions(provider)
        reasons = {
            f"{function.function_arn}:*": "CDK's Provider framework invokes this function "
            "of the construct, any version (the qualifier is the wildcard)."
            for function in handlers + framework
        }
        reasons["*"] = (
            "The waiter state machine's log delivery: CloudWatch Logs' delivery APIs "
            "(CreateLogDelivery, PutResourcePolicy, ...) have no resource-level permissions."
        )
        acknowledge_wildcards(provider, reasons)
        Validations.of(provider).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SF2",
                reason="The waiter only polls is_complete; its logs (without execution data) "
                "and the handlers' logs show each step, X-Ray would add nothing.",
            ),
        )


def _framework_functions(provider: cr.Provider) -> list[lambda_.Function]:
    return [child for child in provider.node.children if isinstance(child, lambda_.Function)]
