"""The rulebook: each SageMaker rule catches a known-bad request, names its document,
and every shipped stage's templates obey all of them."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from stacks.rulebook import RULES
from stacks.rulebook import requests as api
from stacks.rulebook.limits import has_instance_store, step_problem
from stacks.rulebook.templates import check_stage
from stacks.stage import images
from tests.conftest import STAGES


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


def test_every_rule_names_its_document_and_says_itself():
    for rule in RULES.values():
        assert rule.document and rule.says and rule.id
        assert "\n" not in rule.document + rule.says


def test_every_request_rule_catches_a_known_bad_request():
    assert set(KNOWN_BAD) | TEMPLATE_ONLY | CONFIG_ONLY == set(RULES)


@pytest.mark.parametrize("rule_id", sorted(KNOWN_BAD))
def test_a_known_bad_request_breaks_its_rule(rule_id):
    operation, request, knows = KNOWN_BAD[rule_id]
    broken = {v.rule.id for v in api.check(operation, request, knows)}
    assert rule_id in broken


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


@pytest.mark.parametrize("operation, request_, knows", GOOD, ids=[f"{g[0]}-{i}" for i, g in enumerate(GOOD)])
def test_a_request_sagemaker_takes_breaks_nothing(operation, request_, knows):
    assert api.check(operation, request_, knows) == []


@pytest.mark.parametrize(
    ("strategy", "instances", "sizes", "problem"),
    [
        ("canary", 1, range(2, 5), None),
        ("canary", 1, range(1, 5), "1 of 1 instance(s) is 100 %"),  # autoscaling's minimum counts
        ("canary", 2, range(2, 5), "2 of 2 instance(s) is 100 %"),
        ("canary", 0, (2,), "moves no traffic"),
        ("linear", 1, range(2, 11), None),  # 10 % at ten instances is the documented edge
        ("linear", 1, range(2, 12), "1 of 11 instance(s) is 9.09 %"),  # every size up to max counts
        ("linear", 1, (1,), "1 of 1 instance(s) is 100 %"),
    ],
)
def test_steps_are_their_documented_share_at_every_fleet_size(strategy, instances, sizes, problem):
    found = step_problem(strategy, instances, sizes)
    assert (found is None) if problem is None else problem in found


def test_instance_store_allow_list_comes_from_the_documents():
    for family in ("dl1", "p6-b200", "p6e-gb200", "p4d", "g4dn", "g5"):
        assert has_instance_store(f"ml.{family}.xlarge"), family
    for family in ("m5", "c5", "p3", "inf2", "t3"):
        assert not has_instance_store(f"ml.{family}.xlarge"), family


@pytest.mark.parametrize("stage", STAGES)
def test_every_shipped_stage_obeys_every_rule(synthesized, stage):
    synth = synthesized(stage)
    assert synth.stage.rule_violations(synth.assembly) == []


def broken(synth, edit):
    serving = copy.deepcopy(synth.serving.to_json())
    edit(serving)
    config = synth.stage.config
    return {v.rule.id for v in check_stage(serving, config.account, config.region)}


def of_type(template, kind):
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def test_a_broken_template_is_caught(synthesized):
    def serverless_prefix(serving):
        # dev as it shipped before: a serverless endpoint serving the job's uncompressed prefix.
        (job,) = of_type(serving, "Custom::TfHubPackagingJob")
        job["Properties"]["CompressionType"] = "NONE"
        (model,) = of_type(serving, "AWS::SageMaker::Model")
        container = model["Properties"]["PrimaryContainer"]
        container["ModelDataSource"] = {
            "S3DataSource": {
                "S3Uri": container.pop("ModelDataUrl"),
                "S3DataType": "S3Prefix",
                "CompressionType": "None",
            }
        }

    def aws_managed_topic_key(serving):
        (topic,) = of_type(serving, "AWS::SNS::Topic")
        topic["Properties"]["KmsMasterKeyId"] = "alias/aws/sns"

    def alarms_the_role_cannot_read(serving):
        for policy in of_type(serving, "AWS::IAM::Policy"):
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            statements[:] = [s for s in statements if s.get("Sid") != "DescribeRollbackAlarms"]

    def retained_capture(serving):
        (endpoint,) = of_type(serving, "AWS::SageMaker::Endpoint")
        endpoint["Properties"]["ExcludeRetainedVariantProperties"].append({"VariantPropertyType": "DataCaptureConfig"})

    def topic_policy_without_cloudwatch(serving):
        (policy,) = of_type(serving, "AWS::SNS::TopicPolicy")
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        statements[:] = [s for s in statements if s["Effect"] == "Deny"]

    def topic_policy_for_another_account(serving):
        (policy,) = of_type(serving, "AWS::SNS::TopicPolicy")
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                statement["Condition"]["StringEquals"]["aws:SourceAccount"] = "999999999999"

    def key_denies_cloudwatch(serving):
        (key,) = [k for k in of_type(serving, "AWS::KMS::Key") if "CloudWatchAlarmsPublish" in json.dumps(k)]
        key["Properties"]["KeyPolicy"]["Statement"].append(
            {"Effect": "Deny", "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "kms:*", "Resource": "*"}
        )

    def rollback_alarms_gone(serving):
        serving["Resources"] = {k: r for k, r in serving["Resources"].items() if r["Type"] != "AWS::CloudWatch::Alarm"}

    def grant_in_another_account(serving):
        for policy in of_type(serving, "AWS::IAM::Policy"):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement.get("Sid") == "DescribeRollbackAlarms":
                    statement["Resource"] = [
                        json.loads(json.dumps(r).replace("222222222222", "999999999999")) for r in statement["Resource"]
                    ]

    def autoscaling_down_to_one(serving):
        (target,) = of_type(serving, "AWS::ApplicationAutoScaling::ScalableTarget")
        target["Properties"]["MinCapacity"] = 1  # a canary of one would be the whole fleet

    def count_from_a_parameter(serving):
        (config,) = of_type(serving, "AWS::SageMaker::EndpointConfig")
        config["Properties"]["ProductionVariants"][0]["InitialInstanceCount"] = {"Ref": "Count"}

    assert "serverless-model-data" in broken(synthesized("dev"), serverless_prefix)
    assert "alarm-topic-key" in broken(synthesized("staging"), aws_managed_topic_key)
    assert "alarm-topic-key" in broken(synthesized("staging"), topic_policy_without_cloudwatch)
    assert "alarm-topic-key" in broken(synthesized("prod"), topic_policy_for_another_account)
    assert "alarm-topic-key" in broken(synthesized("prod"), key_denies_cloudwatch)
    assert "rollback-alarms" in broken(synthesized("staging"), alarms_the_role_cannot_read)
    assert "rollback-alarms" in broken(synthesized("staging"), rollback_alarms_gone)
    assert "rollback-alarms" in broken(synthesized("staging"), grant_in_another_account)
    assert "retained-variant-properties" in broken(synthesized("prod"), retained_capture)
    assert "canary-size" in broken(synthesized("prod"), autoscaling_down_to_one)
    assert "canary-size" in broken(synthesized("prod"), count_from_a_parameter)


def test_the_pinned_images_are_in_their_patch_windows_until_365_days_after_release():
    first_to_end = min(images.GA_DATES.values()) + images.PATCH_WINDOW
    assert images.out_of_patch(first_to_end) == []
    assert len(images.out_of_patch(first_to_end + dt.timedelta(days=1))) == 1
    late = images.out_of_patch(dt.date(2030, 1, 1))
    assert len(late) == 2 and all("left its patch window" in line and "stacks/stage/images.py" in line for line in late)


def test_synth_warns_about_an_image_out_of_its_window(tmp_path):
    import aws_cdk as cdk

    from stacks.compose import add_stage
    from tests.conftest import cdk_json_context

    app = cdk.App(outdir=str(tmp_path), context=cdk_json_context())
    stage = add_stage(app, "dev", default_region="us-east-1", today=dt.date(2030, 1, 1))
    assembly = app.synth()
    messages = [
        m.entry.data
        for m in assembly.get_stack_by_name(stage.serving.stack_name).messages
        if m.level == cdk.cx_api.SynthesisMessageLevel.WARNING
    ]
    assert any("left its patch window" in str(message) for message in messages)
    assert stage.rule_violations(assembly) == []


def test_a_template_that_breaks_a_rule_fails_the_cli_synth_in_one_line_per_rule(tmp_path, monkeypatch):
    """app.py's gate, through the real CLI: a construct bug that config cannot catch
    still never reaches CloudFormation."""
    from tests.test_app import cli_synth, copy_project

    project = copy_project(tmp_path, lambda context: None)
    serving = project / "stacks" / "serving" / "stack.py"
    # A regression that sends the serverless stage's model through ModelDataSource.
    serving.write_text(
        serving.read_text().replace(
            'artifact_key, is_prefix = self.packaging.artifact_key, config.packaging_compression == "NONE"',
            "artifact_key, is_prefix = self.packaging.artifact_key, True",
        )
    )
    result = cli_synth(tmp_path, "out", "-c", "stage=dev", cwd=project)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("Template breaks a SageMaker rule")]
    assert any("SageMaker rule serverless-model-data" in line for line in lines), result.stderr
    assert all(line.count("SageMaker rule ") == 1 for line in lines)
    assert "Traceback" not in result.stderr


def test_the_readme_states_every_rule():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    for rule_id in RULES:
        assert f"| `{rule_id}` |" in readme, rule_id
