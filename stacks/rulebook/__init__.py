"""SageMaker's own rules (and CloudWatch's, where they decide what SageMaker does) that
a stage's config or a synthesized template can break, each with the document it comes from.

The emulators accept requests SageMaker rejects, so each rule is checked where
none can skip it: the stage config refuses a breaking value at synth (naming
the key, the value and the rule, `stacks/stage/config.py`), every synthesized
template is checked (`templates.py`), and the rehearsal's SageMaker checks every
request before moto sees it (`requests.py`). The limits behind the rules are in
`limits.py`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    id: str
    says: str  # the rule in a user's words
    document: str  # where SageMaker (or CloudWatch) states it
    project: bool = False  # the project's own rule, inferred from the document, not stated in it

    def __str__(self) -> str:
        owner = "project" if self.project else "SageMaker"
        return f"{owner} rule {self.id}: {self.says} ({self.document})"


_API = "SageMaker API reference"
_GUIDE = "SageMaker developer guide"

RULES = {
    rule.id: rule
    for rule in (
        Rule(
            "serverless-model-data",
            "a serverless endpoint serves a model.tar.gz (ModelDataUrl), never an uncompressed prefix "
            "(ModelDataSource)",
            f'{_API}, ContainerDefinition.ModelDataSource: "Currently you cannot use ModelDataSource in '
            'conjunction with ... SageMaker serverless endpoints"',
        ),
        Rule(
            "model-data-url-tar-gz",
            "ModelDataUrl names a single .tar.gz archive in S3",
            f"{_API}, ContainerDefinition.ModelDataUrl",
        ),
        Rule(
            "model-data-prefix-slash",
            "an uncompressed model prefix (S3Prefix) ends with '/'",
            f'{_API}, S3ModelDataSource.S3Uri: "A valid key name prefix ... always ends with a forward slash"',
        ),
        Rule(
            "model-data-no-folder-objects",
            "an uncompressed model prefix holds no zero-byte 'folder' objects (keys ending in '/')",
            f'{_API}, S3ModelDataSource: "Do not organize the model artifacts in S3 console using folders"',
        ),
        Rule(
            "serverless-features",
            "a serverless endpoint has exactly one variant and no network isolation, VPC or data capture",
            f'{_GUIDE}, "Deploy models with Amazon SageMaker Serverless Inference", feature exclusions',
        ),
        Rule(
            "serverless-limits",
            "serverless memory is 1024-6144 MB in 1024 MB steps and concurrency 1-200",
            f"{_API}, ProductionVariantServerlessConfig",
        ),
        Rule(
            "serverless-regions",
            "serverless inference exists only in the regions the developer guide lists",
            f'{_GUIDE}, "Deploy models with Amazon SageMaker Serverless Inference", supported Regions',
        ),
        Rule(
            "serverless-rolling",
            "rolling updates exclude serverless endpoints (blue/green all at once is allowed)",
            f'{_GUIDE}, deployment guardrails, "Exclusions"',
        ),
        Rule(
            "serverless-traffic-shifting",
            "canary and linear steps are counted in a variant's instances, which a serverless variant has none of",
            f'project rule, from {_API}, TrafficRoutingConfig: CanarySize and LinearStepSize are shares of "the '
            "variant's total instance count\"",
            project=True,
        ),
        Rule(
            "instance-store-kms",
            "instance types with local NVMe storage take no KMS key for their volume (hardware-encrypted)",
            f"{_API}, CreateEndpointConfig.KmsKeyId and ResourceConfig.VolumeKmsKeyId: \"You can't request a "
            'KmsKeyId when using an instance type with local storage"',
        ),
        Rule(
            "endpoint-instance-type",
            "an endpoint variant runs on an instance type SageMaker offers for real-time endpoints",
            f"{_API}, ProductionVariant.InstanceType, valid values; botocore's enum ProductionVariantInstanceType",
        ),
        Rule(
            "training-instance-type",
            "a training job runs on an instance type SageMaker offers for training",
            f"{_API}, ResourceConfig.InstanceType, valid values; botocore's enum TrainingInstanceType",
        ),
        Rule(
            "canary-size",
            "a canary is at least one instance and at most 50 % of the variant's instances, at every fleet size "
            "autoscaling may hold",
            f"{_API}, TrafficRoutingConfig.CanarySize: \"less than or equal to 50% of the variant's total instance "
            'count"; CapacitySize',
        ),
        Rule(
            "linear-step",
            "a linear step is at least one instance and 10-50 % of the variant's instances, at every fleet size "
            "autoscaling may hold",
            f'{_API}, TrafficRoutingConfig.LinearStepSize: "10-50% of the variant\'s total instance count"; '
            "CapacitySize",
        ),
        Rule(
            "blue-green-timeout",
            "a blue/green update's waits (one per traffic shift, and the wait before the old fleet ends) stay "
            "below its execution timeout, which is at most 8 hours; the stacks set it to the waits plus half an hour "
            "for the new fleet",
            f'{_API}, BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds: 600-28800, "larger than the total '
            'waiting time specified in TerminationWaitInSeconds and WaitIntervalInSeconds"',
        ),
        Rule(
            "rollback-alarms",
            "auto-rollback watches 1-10 CloudWatch alarms, and the execution role may cloudwatch:DescribeAlarms "
            "on them",
            f'{_API}, AutoRollbackConfig.Alarms; {_GUIDE}, "Auto-Rollback Configuration and Monitoring"',
        ),
        Rule(
            "retained-variant-properties",
            "ExcludeRetainedVariantProperties lists only DesiredInstanceCount and DesiredWeight "
            '(DataCaptureConfig is "Not currently supported")',
            f"{_API}, VariantProperty; CloudFormation AWS::SageMaker::Endpoint VariantProperty",
        ),
        Rule(
            "autoscaled-instance-type",
            "the instance type of a variant registered with Application Auto Scaling cannot change in an update "
            "(deregister it first); a new model can",
            f'{_GUIDE}, "Update endpoints that use auto scaling"',
        ),
        Rule(
            "instances-to-serverless",
            "an instance-backed endpoint cannot be updated to serverless; serverless to instances is allowed, "
            "and cannot be undone",
            f'{_GUIDE}, "Deploy models with Amazon SageMaker Serverless Inference": "You cannot convert your '
            "instance-based, real-time endpoint to a serverless endpoint ... You can convert a serverless endpoint "
            'to real-time, but once you make the update, you cannot roll it back to serverless."',
        ),
        Rule(
            "hyperparameter-length",
            "a training hyperparameter value is at most 2500 characters",
            f"{_API}, CreateTrainingJob.HyperParameters",
        ),
        Rule(
            "spot-wait",
            "with managed spot, MaxWaitTimeInSeconds is at least MaxRuntimeInSeconds",
            f"{_API}, StoppingCondition.MaxWaitTimeInSeconds",
        ),
        Rule(
            "alarm-topic-key",
            "an SNS topic that CloudWatch alarms publish to is encrypted with a customer-managed key whose "
            "policy lets cloudwatch.amazonaws.com use kms:Decrypt and kms:GenerateDataKey*, not alias/aws/sns",
            'Amazon SNS developer guide, "Key management", compatibility with encrypted topics; AWS '
            'Knowledge Center, "configure a CloudWatch alarm with an encrypted SNS topic"',
        ),
    )
}


@dataclass(frozen=True)
class Violation:
    rule: Rule
    where: str  # the resource, request or key that breaks it
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}; {self.rule}"


def violation(rule_id: str, where: str, detail: str) -> Violation:
    return Violation(RULES[rule_id], where, detail)
