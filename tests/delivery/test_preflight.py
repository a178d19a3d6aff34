"""`make deploy`'s check of an update against the endpoint as deployed (moto): the
rules synth cannot know refuse the deploy in one line before the CDK CLI runs."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from delivery import preflight
from delivery.deployed import DeployedStage
from stacks.stage.config import load_from_cdk_json
from tests.conftest import ROOT
from tools.cli import UserError

REGION = "eu-west-1"


@pytest.fixture
def reach():
    """A stage of the real cdk.json, reached in moto."""
    with mock_aws():

        def stage(name: str) -> DeployedStage:
            config = load_from_cdk_json(ROOT / "cdk.json", name, {"AWS_REGION": REGION})
            session = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
            return DeployedStage(config, session)

        yield stage


def serving_now(stage: DeployedStage, instance_type: str, scaled: bool) -> None:
    """The stage's endpoint as an earlier deploy left it: two instances of `instance_type`."""
    sagemaker, name = stage.client("sagemaker"), stage.config.endpoint_name
    sagemaker.create_model(
        ModelName="served",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/model",
        PrimaryContainer={"Image": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference:2.20.0-cpu"},
    )
    variant = {"VariantName": "AllTraffic", "ModelName": "served", "InitialInstanceCount": 2}
    variant["InstanceType"] = instance_type
    sagemaker.create_endpoint_config(EndpointConfigName="served", ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName="served")
    if scaled:
        stage.client("application-autoscaling").register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=f"endpoint/{name}/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=2,
            MaxCapacity=4,
        )


def test_an_autoscaled_variants_new_instance_type_is_refused_before_the_deploy(reach, synthesized):
    """prod's template asks for ml.m5.xlarge; the deployed variant is ml.m5.large with
    its scalable target registered, which a blue/green update refuses."""
    prod = reach("prod")
    serving_now(prod, "ml.m5.large", scaled=True)
    refusal = r"Not deploying stage prod.*ml.m5.large -> ml.m5.xlarge.*autoscaled-instance-type"
    with pytest.raises(UserError, match=refusal):
        preflight.check(prod, synthesized("prod").outdir)


@pytest.mark.parametrize(("instance_type", "scaled"), [("ml.m5.large", False), ("ml.m5.xlarge", True)])
def test_an_update_sagemaker_takes_goes_ahead(reach, synthesized, instance_type, scaled):
    prod = reach("prod")
    serving_now(prod, instance_type, scaled)
    preflight.check(prod, synthesized("prod").outdir)


def test_a_stage_never_deployed_has_nothing_to_check(reach, synthesized):
    preflight.check(reach("prod"), synthesized("prod").outdir)


def test_instances_cannot_become_serverless_in_an_update(reach, synthesized):
    dev = reach("dev")
    serving_now(dev, "ml.m5.large", scaled=False)
    with pytest.raises(UserError, match=r"Not deploying stage dev.*from instances to serverless"):
        preflight.check(dev, synthesized("dev").outdir)


def test_what_it_cannot_read_it_says_it_did_not_check_and_the_deploy_goes_on(reach, synthesized):
    """No permission to describe the endpoint (CI's deploy role may lack it): the check
    steps aside in a line; SageMaker still refuses a bad update itself."""
    prod = reach("prod")
    sagemaker = prod.client("sagemaker")
    said: list[str] = []
    with Stubber(sagemaker) as stub:
        stub.add_client_error("describe_endpoint", "AccessDeniedException", "not authorized")
        preflight.check(prod, synthesized("prod").outdir, said.append)
    assert said == [
        "update check: not made (ClientError: An error occurred (AccessDeniedException) when calling the "
        "DescribeEndpoint operation: not authorized); SageMaker refuses what it would have itself"
    ]


def test_without_autoscaling_to_read_the_other_rules_still_hold(reach, synthesized, monkeypatch):
    """An emulator without Application Auto Scaling (the rehearsal's): the scaling rule is
    said to be unchecked, and instances to serverless is still refused."""
    dev = reach("dev")
    serving_now(dev, "ml.m5.large", scaled=False)
    autoscaling = dev.client("application-autoscaling")
    said: list[str] = []
    with Stubber(autoscaling) as stub:
        stub.add_client_error("describe_scalable_targets", "400", "")
        with pytest.raises(UserError, match="from instances to serverless"):
            preflight.check(dev, synthesized("dev").outdir, said.append)
    assert said and said[0].startswith("update check: autoscaling not read")
