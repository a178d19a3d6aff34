"""The rehearsal's SageMaker is strict where moto is lenient: a request SageMaker would
refuse is refused before moto sees it, naming the rule; one it takes goes through."""

from __future__ import annotations

import inspect
import urllib.request

import boto3
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from rehearsal.sagemaker import SageMaker
from rehearsal.training_jobs import split_uri
from stacks.rulebook import RULES
from stacks.rulebook import requests as api
from tests.conftest import moto_server
from tests.rulebook.known_requests import KNOWN_BAD
from tests.rulebook.request_parts import ARCHIVE_MODEL

ROLE = "arn:aws:iam::000000000000:role/execution"
KEYS = {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}

# Rules no request through the front can prove, and why not.
NOT_THROUGH_THE_FRONT = {
    "alarm-topic-key": "template-only: the alarm topic's key and its policy are SNS and KMS resources, which no "
    "SageMaker request carries (test_templates.py checks them)",
    "serverless-regions": "config-only: a region is no field of a request, and the emulators' us-east-1 has "
    "serverless inference; the stage config refuses other regions at synth",
    "serverless-traffic-shifting": "a project rule, not SageMaker's: the front lets the request through "
    "(test_the_front_leaves_project_rules_to_the_config); the stage config refuses it at synth",
}
THROUGH_THE_FRONT = sorted(rule_id for rule_id in KNOWN_BAD if not RULES[rule_id].project)


@pytest.fixture(scope="module")
def moto_url():
    with moto_server() as url:
        yield url


@pytest.fixture
def sagemaker(moto_url, tmp_path):
    """A fresh front on an emptied moto (one moto per module: starting one takes seconds)."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).close()

    def clients(service, url):
        return boto3.client(service, endpoint_url=url, **KEYS)

    # moto's S3 and CloudWatch Logs stand in for ministack's here.
    with SageMaker(moto_url, clients, tmp_path, {"AWS_ENDPOINT_URL": moto_url}) as strict:
        s3 = clients("s3", moto_url)
        s3.create_bucket(Bucket="models")
        front, moto = clients("sagemaker", strict.url), clients("sagemaker", moto_url)
        yield front, moto, s3, clients("application-autoscaling", moto_url), strict


def model(client, name, container):
    client.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "i", **container})


def send(client, operation, request):
    return getattr(client, xform_name(operation))(**request)


def arrange(front, autoscaling, s3, request, knows):
    """Create, through the front, what SageMaker knows when `request` arrives: the
    objects under a prefix, the models (an archive unless the case says otherwise),
    configs and endpoints, and the variants registered with Application Auto Scaling."""
    for uri, keys in knows.prefixes.items():
        bucket, _ = split_uri(uri)
        for key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=b"" if key.endswith("/") else b"pb")
    named = {v["ModelName"] for c in [request, *knows.configs.values()] for v in c.get("ProductionVariants", [])}
    for name in sorted(named | set(knows.models)):
        front.create_model(ModelName=name, ExecutionRoleArn=ROLE, **knows.models.get(name, ARCHIVE_MODEL))
    for name, config in knows.configs.items():
        front.create_endpoint_config(EndpointConfigName=name, **config)
    for name, endpoint in knows.endpoints.items():
        front.create_endpoint(EndpointName=name, **endpoint)
    for variant, (low, high) in knows.scaled.items():
        autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=f"endpoint/{request['EndpointName']}/variant/{variant}",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=low,
            MaxCapacity=high,
        )


def moto_state(moto):
    return {
        "models": sorted(m["ModelName"] for m in moto.list_models()["Models"]),
        "configs": sorted(c["EndpointConfigName"] for c in moto.list_endpoint_configs()["EndpointConfigs"]),
        "endpoints": {
            e["EndpointName"]: moto.describe_endpoint(EndpointName=e["EndpointName"])["EndpointConfigName"]
            for e in moto.list_endpoints()["Endpoints"]
        },
        "jobs": sorted(j["TrainingJobName"] for j in moto.list_training_jobs()["TrainingJobSummaries"]),
    }


def refused(call, rule: str):
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert f"SageMaker rule {rule}" in caught.value.response["Error"]["Message"]


def test_every_rule_is_proven_through_the_front_or_says_why_not():
    assert set(THROUGH_THE_FRONT).isdisjoint(NOT_THROUGH_THE_FRONT)
    assert set(THROUGH_THE_FRONT) | set(NOT_THROUGH_THE_FRONT) == set(RULES)
    # A rule listed as out of the front's reach is one the request checks never name,
    # or a project rule the front skips.
    checks = inspect.getsource(api)
    for rule_id, why in NOT_THROUGH_THE_FRONT.items():
        assert why and (RULES[rule_id].project or f'"{rule_id}"' not in checks), rule_id


@pytest.mark.parametrize("rule_id", THROUGH_THE_FRONT)
def test_a_known_bad_request_is_refused_before_moto(sagemaker, rule_id):
    front, moto, s3, autoscaling, strict = sagemaker
    operation, request, knows = KNOWN_BAD[rule_id]
    arrange(front, autoscaling, s3, request, knows)
    before = moto_state(moto)
    refused(lambda: send(front, operation, request), rule_id)
    assert moto_state(moto) == before
    assert strict.checked[operation] >= 1


def test_the_front_leaves_project_rules_to_the_config(sagemaker):
    """The guardrails guide excludes serverless only from rolling updates; that a
    canary step counts instances is the project's reading, which synth enforces."""
    front, moto, s3, autoscaling, _ = sagemaker
    operation, request, knows = KNOWN_BAD["serverless-traffic-shifting"]
    assert RULES["serverless-traffic-shifting"].project
    arrange(front, autoscaling, s3, request, knows)
    send(front, operation, request)
    assert moto.describe_endpoint(EndpointName="e")["EndpointConfigName"] == "new"


def test_network_isolation_moto_forgets_is_still_known(sagemaker):
    client, moto, _, _, _ = sagemaker
    client.create_model(
        ModelName="isolated",
        ExecutionRoleArn=ROLE,
        EnableNetworkIsolation=True,
        PrimaryContainer={"Image": "i", "ModelDataUrl": "s3://models/model.tar.gz"},
    )
    assert moto.describe_model(ModelName="isolated")["EnableNetworkIsolation"] is False  # moto drops it
    refused(
        lambda: client.create_endpoint_config(
            EndpointConfigName="bad",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "isolated",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                }
            ],
        ),
        "serverless-features",
    )


def test_an_endpoint_turns_from_serverless_to_instances_and_never_back(sagemaker):
    client, moto, _, _, _ = sagemaker
    model(client, "m", {"ModelDataUrl": "s3://models/model.tar.gz"})
    client.create_endpoint_config(
        EndpointConfigName="serverless",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m",
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
            }
        ],
    )
    client.create_endpoint_config(
        EndpointConfigName="instances",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    client.create_endpoint(EndpointName="e", EndpointConfigName="serverless")
    client.update_endpoint(EndpointName="e", EndpointConfigName="instances")
    assert moto.describe_endpoint(EndpointName="e")["EndpointConfigName"] == "instances"
    refused(
        lambda: client.update_endpoint(EndpointName="e", EndpointConfigName="serverless"), "instances-to-serverless"
    )
    assert moto.describe_endpoint(EndpointName="e")["EndpointConfigName"] == "instances"


def test_what_sagemaker_takes_goes_through_to_moto(sagemaker):
    client, moto, s3, autoscaling, strict = sagemaker
    s3.put_object(Bucket="models", Key="m/use/4/saved_model.pb", Body=b"pb")
    prefix = {
        "ModelDataSource": {
            "S3DataSource": {"S3Uri": "s3://models/m/", "S3DataType": "S3Prefix", "CompressionType": "None"}
        }
    }
    model(client, "a", prefix)
    model(client, "b", prefix)
    for name, kind in (("one", "a"), ("two", "b")):
        client.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": kind,
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 2,
                }
            ],
        )
    client.create_endpoint(EndpointName="e", EndpointConfigName="one")
    # Autoscaled between 2 and 4: a new model on the same instance type is allowed.
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/e/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=2,
        MaxCapacity=4,
    )
    assert strict.scaling("e") == {"AllTraffic": (2, 4)}
    client.update_endpoint(
        EndpointName="e",
        EndpointConfigName="two",
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "WaitIntervalInSeconds": 60,
                    "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                }
            }
        },
    )
    assert moto.describe_endpoint(EndpointName="e")["EndpointConfigName"] == "two"
