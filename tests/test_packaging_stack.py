"""The packaging custom resource in the dev template: wiring, timeouts, permissions."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from stacks import source_archive
from tests.conftest import ROOT, synth_stage

JOB = ROOT / "packaging_job"


def only(template, resource_type, props=None):
    found = template.find_resources(resource_type, {"Properties": props} if props else None)
    assert len(found) == 1, found
    return next(iter(found.items()))


def job(synthesized):
    return only(synthesized("dev").serving, "Custom::TfHubPackagingJob")


def test_the_serverless_model_serves_the_archive_the_packaging_job_wrote(synthesized):
    # Serverless endpoints take no ModelDataSource: the job compresses (GZIP) and
    # the Model reads its model.tar.gz through ModelDataUrl.
    job_id, resource = job(synthesized)
    assert resource["Properties"]["CompressionType"] == "GZIP"
    _, model = only(synthesized("dev").serving, "AWS::SageMaker::Model")
    container = model["Properties"]["PrimaryContainer"]
    assert container["ModelDataUrl"] == {"Fn::GetAtt": [job_id, "ArtifactUri"]}
    assert "ModelDataSource" not in container
    outputs = synthesized("dev").serving.find_outputs("*")
    assert outputs["ArtifactLocation"]["Value"] == {"Fn::GetAtt": [job_id, "ArtifactUri"]}
    assert outputs["TreeDigest"]["Value"] == {"Fn::GetAtt": [job_id, "TreeDigest"]}


def test_an_instance_backed_model_serves_the_uncompressed_prefix(context, tmp_path):
    context["stages"]["dev"]["serving"] = {"instances": {"type": "ml.m5.large", "count": 1}}
    serving = Template.from_stack(synth_stage("dev", tmp_path, context).serving)
    (job_id, resource), = serving.find_resources("Custom::TfHubPackagingJob").items()
    assert (resource["Properties"]["CompressionType"], resource["Properties"]["ServerlessMemoryMb"]) == ("NONE", "")
    (model,) = serving.find_resources("AWS::SageMaker::Model").values()
    assert model["Properties"]["PrimaryContainer"]["ModelDataSource"]["S3DataSource"] == {
        "S3Uri": {"Fn::GetAtt": [job_id, "ArtifactUri"]},
        "S3DataType": "S3Prefix",
        "CompressionType": "None",
    }


def test_pinned_stages_run_no_packaging_job(synthesized):
    for stage in ("staging", "prod"):
        serving = synthesized(stage).serving
        serving.resource_count_is("Custom::TfHubPackagingJob", 0)
        serving.resource_count_is("AWS::Lambda::Function", 0)


def test_job_properties_carry_the_stage_settings(synthesized):
    _, resource = job(synthesized)
    props = resource["Properties"]
    assert props["JobNamePrefix"] == "tfhub-serving-dev-pkg"
    assert props["TrainingImage"] == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.21.0-cpu-py312"
    )
    assert (props["CompressionType"], props["ServerlessMemoryMb"]) == ("GZIP", 3072)
    assert props["ServingTfVersion"] == "2.20.0"
    assert props["HubHandle"] == "https://tfhub.dev/google/universal-sentence-encoder/4"
    assert (props["ModelName"], props["ModelVersion"]) == ("universal-sentence-encoder", 4)
    assert props["SampleInput"] == '["hello world"]'
    assert (props["InstanceType"], props["VolumeSizeGb"], props["MaxRuntimeSeconds"]) == ("ml.m5.xlarge", 30, 1800)
    assert props["RoleArn"] == {"Fn::ImportValue": "tfhub-serving-dev-execution-role-arn"}
    assert props["TrainUri"]["Fn::Join"][1][-1] == "/trainingData/train/"
    assert props["OutputUri"]["Fn::Join"][1][-1] == "/artifacts/packaging/"
    assert props["Tags"] == {"cost-center": "ml-dev", "project": "tfhub-serving", "stage": "dev"}
    assert props["SourceDigest"] == source_archive.build(JOB)[1]


def test_timeouts_fit_cloudformations_hour(synthesized):
    _, resource = job(synthesized)
    # 30 min of job + 15 min for provisioning and upload; CloudFormation waits 5 more.
    assert resource["Properties"]["ServiceTimeout"] == str(50 * 60)
    serving = synthesized("dev").serving
    (machine,) = serving.find_resources("AWS::StepFunctions::StateMachine").values()
    definition = "".join(p for p in machine["Properties"]["DefinitionString"]["Fn::Join"][1] if isinstance(p, str))
    assert '"IntervalSeconds":30,"MaxAttempts":90' in definition  # 45 minutes of polling
    serving.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "handler.is_complete", "Environment": {"Variables": {"WAIT_LIMIT_SECONDS": str(45 * 60 - 60)}}},
    )


def test_longest_allowed_job_still_fits(context, tmp_path):
    context["stages"]["dev"]["packaging"]["spot_max_wait_minutes"] = 40
    serving = Template.from_stack(synth_stage("dev", tmp_path, context).serving)
    (resource,) = serving.find_resources("Custom::TfHubPackagingJob").values()
    assert int(resource["Properties"]["ServiceTimeout"]) == 3600
    assert resource["Properties"]["SpotMaxWaitSeconds"] == 2400


def test_handlers_are_current_python_and_scoped_to_this_stages_jobs(synthesized):
    serving = synthesized("dev").serving
    for handler in ("handler.on_event", "handler.is_complete"):
        serving.has_resource_properties("AWS::Lambda::Function", {"Handler": handler, "Runtime": "python3.14"})
    _, policy = only(serving, "AWS::IAM::Policy", {"PolicyName": Match.string_like_regexp("HandlerPermissions")})
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements) == {"RunThisStagesJobs", "PassTheExecutionRoleToSageMaker", "ReadJobManifests"}
    run = statements["RunThisStagesJobs"]
    assert run["Action"] == [
        "sagemaker:AddTags",
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
    ]
    assert "".join(p for p in run["Resource"]["Fn::Join"][1] if isinstance(p, str)).endswith(
        ":training-job/tfhub-serving-dev-pkg*"
    )
    passing = statements["PassTheExecutionRoleToSageMaker"]
    assert passing["Action"] == "iam:PassRole"
    assert passing["Resource"] == {"Fn::ImportValue": "tfhub-serving-dev-execution-role-arn"}
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    manifests = statements["ReadJobManifests"]
    assert manifests["Action"] == "s3:GetObject"
    assert manifests["Resource"]["Fn::Join"][1][-1] == "/artifacts/packaging/tfhub-serving-dev-pkg*"


def test_the_job_may_read_its_own_source_and_nothing_else_of_the_assets_bucket(synthesized):
    serving = synthesized("dev").serving
    _, policy = only(serving, "AWS::IAM::Policy", {"PolicyName": Match.string_like_regexp("SourceRead")})
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "s3:GetObject"
    resource = json.dumps(statement["Resource"])
    assert "cdk-hnb659fds-assets-" in resource and "*" not in resource
    assert policy["Properties"]["Roles"] == [{"Fn::Select": [1, {"Fn::Split": ["/", {"Fn::Select": [5, {"Fn::Split": [":", {"Fn::ImportValue": "tfhub-serving-dev-execution-role-arn"}]}]}]}]}]


def test_job_waits_for_its_permissions(synthesized):
    _, resource = job(synthesized)
    depends = resource["DependsOn"]
    assert any(d.startswith("PackagingHandlerPermissions") for d in depends)
    assert any(d.startswith("PackagingSourceRead") for d in depends)


def test_waiter_logs_everything_but_execution_data(synthesized):
    synthesized("dev").serving.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {"LoggingConfiguration": {"Level": "ALL", "IncludeExecutionData": False, "Destinations": Match.any_value()}},
    )


def test_source_archive_is_reproducible(tmp_path):
    copy = tmp_path / "job"
    for path in source_archive.source_files(JOB):
        target = copy / path.relative_to(JOB)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())  # new mtimes, same content
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"junk")
    assert source_archive.archive_bytes(copy) == source_archive.archive_bytes(JOB)
    (copy / "train.py").write_text((copy / "train.py").read_text() + "\n# changed\n")
    assert source_archive.archive_bytes(copy) != source_archive.archive_bytes(JOB)


def test_two_synths_give_the_same_asset_and_job_inputs(synthesized, tmp_path):
    first = job(synthesized)[1]["Properties"]
    second_template = Template.from_stack(synth_stage("dev", tmp_path).serving)
    (second,) = second_template.find_resources("Custom::TfHubPackagingJob").values()
    assert first["SourceUri"] == second["Properties"]["SourceUri"]
    assert first["SourceDigest"] == second["Properties"]["SourceDigest"]
