"""Production serving per stage: autoscaling, safe updates, alarms, data capture.

Dev and prod differ exactly where cdk.json says: dev is serverless with none of
it; staging updates all at once, baked and rolled back on alarms; prod
autoscales, shifts by canary with alarms and captures data."""

from __future__ import annotations

import json

import pytest

from stacks.stage.config import load_stage_config
from stacks.stage.schema import ConfigError
from tests.iam_simulation import Account, decide_on


def only(template, resource_type):
    found = template.find_resources(resource_type)
    assert len(found) == 1, found
    return next(iter(found.items()))


def endpoint_properties(synthesized, stage):
    return only(synthesized(stage).serving, "AWS::SageMaker::Endpoint")[1]["Properties"]


def test_only_prod_autoscales_and_keeps_the_scaled_count_across_updates(synthesized):
    for stage in ("dev", "staging"):
        synthesized(stage).serving.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
        assert "RetainAllVariantProperties" not in endpoint_properties(synthesized, stage)
    serving = synthesized("prod").serving
    endpoint_id, _ = only(serving, "AWS::SageMaker::Endpoint")
    target_id, target = only(serving, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["Properties"] == {
        "ServiceNamespace": "sagemaker",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "ResourceId": "endpoint/tfhub-serving-prod/variant/AllTraffic",
        "MinCapacity": 2,
        "MaxCapacity": 4,
        "Tags": target["Properties"]["Tags"],
    }
    assert endpoint_id in target["DependsOn"]
    _, policy = only(serving, "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert policy["Properties"]["ScalingTargetId"] == {"Ref": target_id}
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert tracking["TargetValue"] == 200
    endpoint = endpoint_properties(synthesized, "prod")
    assert endpoint["RetainAllVariantProperties"] is True
    # DataCaptureConfig is "Not currently supported" there (VariantProperty).
    assert endpoint["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredWeight"}]


@pytest.mark.parametrize(
    ("stage", "routing", "timeout"),
    [
        # One instance: no whole-instance step smaller than the fleet, so all at once;
        # the timeout covers the wait after the shift and before the old fleet ends,
        # and half an hour for the new fleet.
        ("staging", {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}, 300 + 300 + 1800),
        # Two to four instances: a canary of one, counted in instances (25-50 %): waits
        # after the canary, after the rest, and before the old fleet ends.
        (
            "prod",
            {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 600},
            3 * 600 + 1800,
        ),
    ],
)
def test_updates_shift_traffic_and_roll_back_on_the_alarms(synthesized, stage, routing, timeout):
    serving = synthesized(stage).serving
    endpoint_id, endpoint = only(serving, "AWS::SageMaker::Endpoint")
    config = endpoint["Properties"]["DeploymentConfig"]
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == routing
    assert config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == timeout
    names = [f"tfhub-serving-{stage}-5xx-errors", f"tfhub-serving-{stage}-model-latency"]
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": name} for name in names]}
    alarms = serving.find_resources("AWS::CloudWatch::Alarm")
    assert sorted(a["Properties"]["AlarmName"] for a in alarms.values()) == sorted(names)
    # Named, not referenced: the endpoint waits for them explicitly.
    assert set(alarms) <= set(endpoint["DependsOn"])


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_the_models_role_may_describe_exactly_the_rollback_alarms(synthesized, stage):
    # "Auto-Rollback Configuration and Monitoring": SageMaker reads the alarms as the execution role.
    policies = synthesized(stage).serving.find_resources("AWS::IAM::Policy")
    statements = [
        s
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "DescribeRollbackAlarms"
    ]
    (statement,) = statements
    assert statement["Action"] == "cloudwatch:DescribeAlarms"
    rendered = json.dumps(statement["Resource"])
    for name in (f"tfhub-serving-{stage}-5xx-errors", f"tfhub-serving-{stage}-model-latency"):
        assert f":alarm:{name}" in rendered
    assert "*" not in rendered


def test_dev_has_no_deployment_policy_alarms_or_capture(synthesized):
    serving = synthesized("dev").serving
    assert "DeploymentConfig" not in endpoint_properties(synthesized, "dev")
    serving.resource_count_is("AWS::CloudWatch::Alarm", 0)
    serving.resource_count_is("AWS::SNS::Topic", 0)
    (_, config) = only(serving, "AWS::SageMaker::EndpointConfig")
    assert "DataCaptureConfig" not in config["Properties"]


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_alarms_watch_5xx_and_latency_and_notify_an_encrypted_topic(synthesized, stage):
    serving = synthesized(stage).serving
    topic_id, topic = only(serving, "AWS::SNS::Topic")
    # CloudWatch cannot publish to a topic under alias/aws/sns: a key of the stack's own,
    # whose policy lets CloudWatch use it (rule alarm-topic-key).
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = serving.find_resources("AWS::KMS::Key")[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    (cloudwatch,) = [s for s in key["KeyPolicy"]["Statement"] if s.get("Sid") == "CloudWatchAlarmsPublish"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(cloudwatch["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    # No condition: nothing documents that CloudWatch's KMS calls carry one.
    assert "Condition" not in cloudwatch
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in serving.find_resources("AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {"Invocation5XXErrors", "ModelLatency"}
    for alarm in alarms.values():
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert alarm["Dimensions"] == [
            {"Name": "EndpointName", "Value": f"tfhub-serving-{stage}"},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ]
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    assert alarms["Invocation5XXErrors"]["Threshold"] == 5
    assert alarms["ModelLatency"]["Threshold"] == 1000 * 1000  # 1000 ms, in microseconds


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_only_the_stages_alarms_may_publish_to_the_topic(synthesized, context, stage):
    """The topic's own policy replaces SNS's default one, so CloudWatch must be let in
    by name; SNS evaluates it as IAM does (iam-simulate, offline)."""
    serving = synthesized(stage).serving
    topic_id, _ = only(serving, "AWS::SNS::Topic")
    _, policy = only(serving, "AWS::SNS::TopicPolicy")
    config = load_stage_config(context, stage)
    topic = f"arn:aws:sns:{config.region}:{config.account}:alarms"
    document = Account(serving.to_json(), values={topic_id: topic}).resolve(policy["Properties"]["PolicyDocument"])

    def publish(alarm: str, source_account: str = config.account, secure: str = "true") -> str:
        return decide_on(
            document,
            topic,
            "cloudwatch.amazonaws.com",
            "sns:Publish",
            {
                "aws:SourceArn": f"arn:aws:cloudwatch:{config.region}:{source_account}:alarm:{alarm}",
                "aws:SourceAccount": source_account,
                "aws:SecureTransport": secure,
            },
        )

    for alarm in (f"tfhub-serving-{stage}-5xx-errors", f"tfhub-serving-{stage}-model-latency"):
        assert publish(alarm) == "Allowed"
    assert publish("someone-elses-alarm") == "ImplicitlyDenied"
    assert publish(f"tfhub-serving-{stage}-5xx-errors", source_account="999999999999") == "ImplicitlyDenied"
    assert publish(f"tfhub-serving-{stage}-5xx-errors", secure="false") == "ExplicitlyDenied"


def test_prod_captures_a_sample_of_requests_to_its_bucket(synthesized):
    (_, config) = only(synthesized("prod").serving, "AWS::SageMaker::EndpointConfig")
    capture = config["Properties"]["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 20
    assert capture["DestinationS3Uri"]["Fn::Join"][1][-1] == "/datacapture/"
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]


def test_alarm_subscribers_come_from_config(context, tmp_path):
    from aws_cdk.assertions import Template

    from tests.conftest import synth_stage

    context["stages"]["prod"]["alarms"]["emails"] = ["oncall@example.com"]
    serving = Template.from_stack(synth_stage("prod", tmp_path, context).serving)
    serving.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"})


def test_an_instance_backed_dev_gets_an_idle_teardown_through_its_stack(context, tmp_path):
    from aws_cdk.assertions import Match, Template

    from tests.conftest import synth_stage

    dev = context["stages"]["dev"]
    dev["serving"] = {"instances": {"type": "ml.m5.large", "count": 1}}
    dev["cost_guard"] = {"idle_hours": 8}
    storage = Template.from_stack(synth_stage("dev", tmp_path, context).storage)
    storage.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(1 hour)"})
    storage.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "handler.handler",
            "Runtime": "python3.14",
            "Environment": {
                "Variables": {
                    "ENDPOINT_NAME": "tfhub-serving-dev",
                    "SERVING_STACK": "tfhub-serving-dev-serving",
                    "IDLE_HOURS": "8",
                }
            },
        },
    )
    (policy,) = storage.find_resources(
        "AWS::IAM::Policy", {"Properties": {"PolicyName": Match.string_like_regexp("IdleTeardown")}}
    ).values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    delete = statements["DeleteTheServingStack"]
    assert delete["Action"] == ["cloudformation:DeleteStack", "cloudformation:DescribeStacks"]
    assert ":stack/tfhub-serving-dev-serving/*" in json.dumps(delete["Resource"])
    assert statements["DescribeTheEndpoint"]["Action"] == "sagemaker:DescribeEndpoint"


def test_the_shipped_stages_have_no_idle_teardown(synthesized):
    for stage in ("dev", "staging", "prod"):
        synthesized(stage).storage.resource_count_is("AWS::Events::Rule", 0)


def test_a_serverless_stage_needs_no_cost_guard(context):
    context["stages"]["dev"]["cost_guard"] = {"idle_hours": 8}
    with pytest.raises(ConfigError, match=r"stages.dev.cost_guard: not allowed with serving.serverless"):
        load_stage_config(context, "dev", default_region="us-east-1")


def test_a_stage_serving_promoted_artifacts_takes_no_cost_guard(context):
    # An idle teardown of staging or prod would leave it dark until the next promotion.
    context["stages"]["staging"]["cost_guard"] = {"idle_hours": 8}
    with pytest.raises(
        ConfigError,
        match=r"stages.staging.cost_guard: not allowed on a stage that serves "
        r"promoted artifacts",
    ):
        load_stage_config(context, "staging")
    # A promotion into a packaging stage that has one still loads.
    dev = context["stages"]["dev"]
    dev["serving"] = {"instances": {"type": "ml.m5.large", "count": 1}}
    dev["cost_guard"] = {"idle_hours": 8}
    pinned = load_stage_config(context, "dev", default_region="us-east-1", artifact="artifacts/promoted/a/model/")
    assert pinned.idle_teardown_hours == 8 and pinned.packaging is None
