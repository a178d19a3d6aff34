"""Requests SageMaker refuses (one per rule) and requests it takes, with what SageMaker knows when each arrives."""

from __future__ import annotations

from tests.rulebook.request_parts import (
    ARCHIVE_MODEL,
    PREFIX_MODEL,
    Knows,
    instances,
    on_endpoint,
    prefix_model,
    routing,
    serverless,
    training_job,
)

# Each rule, broken once by a request SageMaker refuses (what the request is, what SageMaker knows).
# Each request is whole (botocore's model takes it), so the rule is all that is wrong with it.
KNOWN_BAD = {
    "serverless-model-data": (
        "CreateEndpointConfig",
        {"EndpointConfigName": "bad", "ProductionVariants": [serverless()]},
        Knows(models={"m": PREFIX_MODEL}),
    ),
    "model-data-url-tar-gz": (
        "CreateModel",
        {"ModelName": "bad", "PrimaryContainer": {"ModelDataUrl": "s3://models/artifacts/model/"}},
        Knows(),
    ),
    "model-data-prefix-slash": (
        "CreateModel",
        {"ModelName": "bad", **prefix_model("s3://models/artifacts/m")},
        Knows(),
    ),
    "model-data-no-folder-objects": (
        "CreateModel",
        {"ModelName": "bad", **PREFIX_MODEL},
        Knows(prefixes={"s3://models/artifacts/m/": ["artifacts/m/use/4/saved_model.pb", "artifacts/m/use/4/assets/"]}),
    ),
    "serverless-features": (
        "CreateEndpointConfig",
        {
            "EndpointConfigName": "bad",
            "ProductionVariants": [serverless()],
            "DataCaptureConfig": {
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "DestinationS3Uri": "s3://models/capture/",
                "CaptureOptions": [{"CaptureMode": "Input"}],
            },
        },
        Knows(models={"m": ARCHIVE_MODEL}),
    ),
    "serverless-limits": (
        "CreateEndpointConfig",
        {"EndpointConfigName": "bad", "ProductionVariants": [serverless(memory=2500)]},
        Knows(models={"m": ARCHIVE_MODEL}),
    ),
    "serverless-rolling": (
        "UpdateEndpoint",
        {
            "EndpointName": "e",
            "EndpointConfigName": "new",
            "DeploymentConfig": {
                "RollingUpdatePolicy": {
                    "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                    "WaitIntervalInSeconds": 60,
                }
            },
        },
        on_endpoint(serverless(), serverless()),
    ),
    "serverless-traffic-shifting": (
        "UpdateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "new", "DeploymentConfig": routing("CANARY")},
        on_endpoint(serverless(), serverless()),
    ),
    "instance-store-kms": (
        "CreateEndpointConfig",
        {
            "EndpointConfigName": "bad",
            "ProductionVariants": [instances(kind="ml.g5.xlarge")],
            "KmsKeyId": "arn:aws:kms:us-east-1:1:key/k",
        },
        Knows(),
    ),
    # ml.c5n trains, but serves no endpoint.
    "endpoint-instance-type": (
        "CreateEndpointConfig",
        {"EndpointConfigName": "bad", "ProductionVariants": [instances(kind="ml.c5n.xlarge")]},
        Knows(),
    ),
    # ml.inf2 serves, but trains no job.
    "training-instance-type": (
        "CreateTrainingJob",
        training_job(ResourceConfig={"InstanceType": "ml.inf2.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}),
        Knows(),
    ),
    # One instance of two is 50 %, but autoscaling may shrink the fleet to one.
    "canary-size": (
        "UpdateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "new", "DeploymentConfig": routing("CANARY", "INSTANCE_COUNT", 1)},
        on_endpoint(instances(count=2), instances(count=2), scaled={"AllTraffic": (1, 4)}),
    ),
    "linear-step": (
        "CreateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": routing("LINEAR", "INSTANCE_COUNT", 3)},
        Knows(configs={"c": {"ProductionVariants": [instances(count=4)]}}),
    ),
    # Ten linear steps of one instance, an hour after each and before the old fleet
    # ends: 11 hours of waits, which no timeout (8 hours at most) exceeds.
    "blue-green-timeout": (
        "CreateEndpoint",
        {
            "EndpointName": "e",
            "EndpointConfigName": "c",
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "LINEAR",
                        "WaitIntervalInSeconds": 3600,
                        "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                    },
                    "TerminationWaitInSeconds": 3600,
                }
            },
        },
        Knows(configs={"c": {"ProductionVariants": [instances(count=10)]}}),
    ),
    "rollback-alarms": (
        "CreateEndpoint",
        {
            "EndpointName": "e",
            "EndpointConfigName": "c",
            "DeploymentConfig": {
                **routing("ALL_AT_ONCE"),
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"a{i}"} for i in range(11)]},
            },
        },
        Knows(configs={"c": {"ProductionVariants": [instances()]}}),
    ),
    "retained-variant-properties": (
        "UpdateEndpoint",
        {
            "EndpointName": "e",
            "EndpointConfigName": "new",
            "RetainAllVariantProperties": True,
            "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DataCaptureConfig"}],
        },
        on_endpoint(instances(), instances()),
    ),
    "autoscaled-instance-type": (
        "UpdateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "new"},
        on_endpoint(instances(kind="ml.m5.large"), instances(kind="ml.m5.xlarge"), scaled={"AllTraffic": (2, 4)}),
    ),
    "instances-to-serverless": (
        "UpdateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "new"},
        on_endpoint(instances(), serverless(), models={"m": ARCHIVE_MODEL}),
    ),
    "hyperparameter-length": ("CreateTrainingJob", training_job(HyperParameters={"hub-handle": "x" * 2501}), Knows()),
    "spot-wait": (
        "CreateTrainingJob",
        training_job(
            EnableManagedSpotTraining=True,
            StoppingCondition={"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 600},
        ),
        Knows(),
    ),
}


# Rules only a template shows (they span resources): checked by `test_a_broken_template_is_caught`.
TEMPLATE_ONLY = {"alarm-topic-key", "rollback-alarms"}


# Rules that hold for the whole config rather than one request: checked at synth by the config.
CONFIG_ONLY = {"serverless-regions"}


GOOD = [
    ("CreateModel", ARCHIVE_MODEL, Knows()),
    (
        "CreateTrainingJob",
        training_job(ResourceConfig={"InstanceType": "ml.c5n.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}),
        Knows(),
    ),
    ("CreateModel", PREFIX_MODEL, Knows(prefixes={"s3://models/artifacts/m/": ["artifacts/m/use/4/saved_model.pb"]})),
    (
        "CreateEndpointConfig",
        {"ProductionVariants": [serverless(memory=6144, concurrency=200)]},
        Knows(models={"m": ARCHIVE_MODEL}),
    ),
    ("CreateEndpointConfig", {"ProductionVariants": [instances(kind="ml.g5.xlarge")]}, Knows()),
    (
        "CreateEndpointConfig",
        {"ProductionVariants": [instances(kind="ml.m5.large")], "KmsKeyId": "k"},
        Knows(models={"m": PREFIX_MODEL}),
    ),
    (
        "CreateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": routing("CANARY", value=50)},
        Knows(configs={"c": {"ProductionVariants": [instances(count=2)]}}),
    ),
    (
        "CreateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": routing("LINEAR", value=25)},
        Knows(configs={"c": {"ProductionVariants": [instances(count=4)]}}),
    ),
    # Percent steps: SageMaker documents only the share, not the rounding.
    (
        "CreateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": routing("CANARY", value=10)},
        Knows(configs={"c": {"ProductionVariants": [instances(count=2)]}}),
    ),
    # One instance is 25-50 % of every fleet size from 2 to 4.
    (
        "CreateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": routing("CANARY", "INSTANCE_COUNT", 1)},
        Knows(configs={"c": {"ProductionVariants": [instances(count=2)]}}, scaled={"AllTraffic": (2, 4)}),
    ),
    (
        "CreateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": routing("LINEAR", "INSTANCE_COUNT", 1)},
        Knows(configs={"c": {"ProductionVariants": [instances(count=2)]}}, scaled={"AllTraffic": (2, 10)}),
    ),
    # Serverless to instances is allowed (one way).
    (
        "UpdateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "new"},
        Knows(
            configs={"old": {"ProductionVariants": [serverless()]}, "new": {"ProductionVariants": [instances()]}},
            endpoints={"e": {"EndpointConfigName": "old"}},
        ),
    ),
    # Blue/green all at once, with auto-rollback, is for serverless endpoints too.
    (
        "UpdateEndpoint",
        {
            "EndpointName": "e",
            "EndpointConfigName": "c",
            "DeploymentConfig": {
                **routing("ALL_AT_ONCE"),
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "a"}]},
            },
        },
        Knows(configs={"c": {"ProductionVariants": [serverless()]}}),
    ),
    # A new model for an autoscaled variant is allowed.
    (
        "UpdateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "new"},
        Knows(
            configs={
                "old": {"ProductionVariants": [instances(model="a")]},
                "new": {"ProductionVariants": [instances(model="b")]},
            },
            endpoints={"e": {"EndpointConfigName": "old"}},
            scaled={"AllTraffic": (2, 4)},
        ),
    ),
]
