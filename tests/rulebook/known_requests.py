"""Requests SageMaker refuses (one per rule) and requests it takes, with what SageMaker knows when each arrives."""

from __future__ import annotations


class Knows:
    """What SageMaker knows when a request arrives, for `requests.check`."""

    def __init__(self, models=None, configs=None, endpoints=None, prefixes=None, scaled=None):
        self.models, self.configs, self.endpoints = models or {}, configs or {}, endpoints or {}
        self.prefixes, self.scaled = prefixes or {}, scaled or {}

    def model(self, name):
        return self.models.get(name)

    def endpoint_config(self, name):
        return self.configs.get(name)

    def endpoint(self, name):
        return self.endpoints.get(name)

    def prefix_keys(self, uri):
        return self.prefixes.get(uri)

    def scaling(self, endpoint_name):
        return self.scaled


PREFIX_MODEL = {
    "PrimaryContainer": {
        "Image": "i",
        "ModelDataSource": {
            "S3DataSource": {"S3Uri": "s3://b/artifacts/m/", "S3DataType": "S3Prefix", "CompressionType": "None"}
        },
    }
}


ARCHIVE_MODEL = {"PrimaryContainer": {"Image": "i", "ModelDataUrl": "s3://b/artifacts/model.tar.gz"}}


def serverless(memory=2048, concurrency=5, model="m"):
    return {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "ServerlessConfig": {"MemorySizeInMB": memory, "MaxConcurrency": concurrency},
    }


def instances(count=2, kind="ml.m5.large", model="m"):
    return {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "InstanceType": kind,
        "InitialInstanceCount": count,
        "InitialVariantWeight": 1.0,
    }


def routing(kind, size_type="CAPACITY_PERCENT", value=50):
    config = {"Type": kind, "WaitIntervalInSeconds": 60}
    if kind != "ALL_AT_ONCE":
        config["CanarySize" if kind == "CANARY" else "LinearStepSize"] = {"Type": size_type, "Value": value}
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": config}}


# Each rule, broken once by a request SageMaker refuses (what the request is, what SageMaker knows).
KNOWN_BAD = {
    "serverless-model-data": (
        "CreateEndpointConfig",
        {"ProductionVariants": [serverless()]},
        Knows(models={"m": PREFIX_MODEL}),
    ),
    "model-data-url-tar-gz": (
        "CreateModel",
        {"PrimaryContainer": {"ModelDataUrl": "s3://b/artifacts/model/"}},
        Knows(),
    ),
    "model-data-prefix-slash": (
        "CreateModel",
        {
            "PrimaryContainer": {
                "ModelDataSource": {
                    "S3DataSource": {"S3Uri": "s3://b/artifacts/m", "S3DataType": "S3Prefix", "CompressionType": "None"}
                }
            }
        },
        Knows(),
    ),
    "model-data-no-folder-objects": (
        "CreateModel",
        PREFIX_MODEL,
        Knows(prefixes={"s3://b/artifacts/m/": ["artifacts/m/use/4/saved_model.pb", "artifacts/m/use/4/assets/"]}),
    ),
    "serverless-features": (
        "CreateEndpointConfig",
        {"ProductionVariants": [serverless()], "DataCaptureConfig": {"EnableCapture": True}},
        Knows(models={"m": ARCHIVE_MODEL}),
    ),
    "serverless-limits": (
        "CreateEndpointConfig",
        {"ProductionVariants": [serverless(memory=2500)]},
        Knows(models={"m": ARCHIVE_MODEL}),
    ),
    "serverless-rolling": (
        "UpdateEndpoint",
        {
            "EndpointName": "e",
            "EndpointConfigName": "c",
            "DeploymentConfig": {"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}}},
        },
        Knows(configs={"c": {"ProductionVariants": [serverless()]}}),
    ),
    "serverless-traffic-shifting": (
        "UpdateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": routing("CANARY")},
        Knows(configs={"c": {"ProductionVariants": [serverless()]}}),
    ),
    "instance-store-kms": (
        "CreateEndpointConfig",
        {"ProductionVariants": [instances(kind="ml.g5.xlarge")], "KmsKeyId": "arn:aws:kms:us-east-1:1:key/k"},
        Knows(),
    ),
    # One instance of two is 50 %, but autoscaling may shrink the fleet to one.
    "canary-size": (
        "CreateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": routing("CANARY", "INSTANCE_COUNT", 1)},
        Knows(configs={"c": {"ProductionVariants": [instances(count=2)]}}, scaled={"AllTraffic": (1, 4)}),
    ),
    "linear-step": (
        "CreateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": routing("LINEAR", "INSTANCE_COUNT", 3)},
        Knows(configs={"c": {"ProductionVariants": [instances(count=4)]}}),
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
            "EndpointConfigName": "c",
            "RetainAllVariantProperties": True,
            "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DataCaptureConfig"}],
        },
        Knows(configs={"c": {"ProductionVariants": [instances()]}}),
    ),
    "autoscaled-instance-type": (
        "UpdateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "new"},
        Knows(
            configs={
                "old": {"ProductionVariants": [instances(kind="ml.m5.large")]},
                "new": {"ProductionVariants": [instances(kind="ml.m5.xlarge")]},
            },
            endpoints={"e": {"EndpointConfigName": "old"}},
            scaled={"AllTraffic": (2, 4)},
        ),
    ),
    "instances-to-serverless": (
        "UpdateEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "new"},
        Knows(
            configs={"old": {"ProductionVariants": [instances()]}, "new": {"ProductionVariants": [serverless()]}},
            models={"m": ARCHIVE_MODEL},
            endpoints={"e": {"EndpointConfigName": "old"}},
        ),
    ),
    "hyperparameter-length": ("CreateTrainingJob", {"HyperParameters": {"hub-handle": "x" * 2501}}, Knows()),
    "spot-wait": (
        "CreateTrainingJob",
        {
            "EnableManagedSpotTraining": True,
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 600},
        },
        Knows(),
    ),
}


# Rules only a template shows (they span resources): checked by `test_a_broken_template_is_caught`.
TEMPLATE_ONLY = {"alarm-topic-key", "rollback-alarms"}


# Rules that hold for the whole config rather than one request: checked at synth by the config.
CONFIG_ONLY = {"serverless-regions"}


GOOD = [
    ("CreateModel", ARCHIVE_MODEL, Knows()),
    ("CreateModel", PREFIX_MODEL, Knows(prefixes={"s3://b/artifacts/m/": ["artifacts/m/use/4/saved_model.pb"]})),
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
