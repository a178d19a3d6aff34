"""Every shipped stage's templates obey every rule; a broken template is caught, at synth and by the CLI."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from stacks.rulebook.templates import check_stage
from stacks.stage import images
from tests.conftest import STAGES


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
