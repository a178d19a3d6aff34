"""The pieces the rule cases are made of: what SageMaker knows when a request arrives, and
request builders (models, variants, deployment configs, training jobs)."""

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


def prefix_model(uri="s3://models/artifacts/m/"):
    source = {"S3Uri": uri, "S3DataType": "S3Prefix", "CompressionType": "None"}
    return {"PrimaryContainer": {"Image": "i", "ModelDataSource": {"S3DataSource": source}}}


PREFIX_MODEL = prefix_model()


ARCHIVE_MODEL = {"PrimaryContainer": {"Image": "i", "ModelDataUrl": "s3://models/artifacts/model.tar.gz"}}


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


def on_endpoint(old, new, **knows):
    """SageMaker knows endpoint e, serving config old, and config new (one variant each)."""
    configs = {"old": {"ProductionVariants": [old]}, "new": {"ProductionVariants": [new]}}
    return Knows(configs=configs, endpoints={"e": {"EndpointConfigName": "old"}}, **knows)


def training_job(**fields):
    return {
        "TrainingJobName": "bad",
        "RoleArn": "arn:aws:iam::000000000000:role/execution",
        "OutputDataConfig": {"S3OutputPath": "s3://models/jobs/"},
        **fields,
    }
