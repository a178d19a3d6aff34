"""The packaging custom resource in the dev template: wiring, timeouts, permissions."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from aws_cdk.assertions import Match, Template

from stacks.model_packaging import source_archive
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
    assert container["ModelDataUrl"]["Fn::Join"][1][-1] == {"Fn::GetAtt": [job_id, "ArtifactKey"]}
    assert "ModelDataSource" not in container
    outputs = synthesized("dev").serving.find_outputs("*")
    assert outputs["ArtifactLocation"]["Value"] == container["ModelDataUrl"]
    assert outputs["TreeDigest"]["Value"] == {"Fn::GetAtt": [job_id, "TreeDigest"]}


def test_an_instance_backed_model_serves_the_uncompressed_prefix(context, tmp_path):
    context["stages"]["dev"]["serving"] = {"instances": {"type": "ml.m5.large", "count": 1}}
    serving = Template.from_stack(synth_stage("dev", tmp_path, context).serving)
    ((job_id, resource),) = serving.find_resources("Custom::TfHubPackagingJob").items()
    assert (resource["Properties"]["CompressionType"], resource["Properties"]["ServerlessMemoryMb"]) == ("NONE", "")
    (model,) = serving.find_resources("AWS::SageMaker::Model").values()
    source = model["Properties"]["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]
    assert (source["S3DataType"], source["CompressionType"]) == ("S3Prefix", "None")
    assert source["S3Uri"]["Fn::Join"][1][-1] == {"Fn::GetAtt": [job_id, "ArtifactKey"]}


def test_pinned_stages_run_no_packaging_job(synthesized):
    for stage in ("staging", "prod"):
        serving = synthesized(stage).serving
        serving.resource_count_is("Custom::TfHubPackagingJob", 0)
        serving.resource_count_is("AWS::Lambda::Function", 0)


def test_job_properties_carry_the_stage_settings(synthesized):
    _, resource = job(synthesized)
    props = resource["Properties"]
    assert props["JobNamePrefix"] == synthesized("dev").stage.config.job_name_prefix
    assert props["TrainingImage"] == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.21.0-cpu-py312"
    )
    assert (props["CompressionType"], props["ServerlessMemoryMb"]) == ("GZIP", 3072)
    assert props["ServingTfVersion"] == "2.20.0"
    assert props["HubHandle"] == "https://tfhub.dev/google/universal-sentence-encoder/4"
    assert (props["ModelName"], props["ModelVersion"]) == ("universal-sentence-encoder", 4)
    assert props["SampleInput"] == '["hello world"]'
    assert (props["InstanceType"], props["VolumeSizeGb"], props["MaxRuntimeSeconds"]) == ("ml.m5.xlarge", 30, 1800)
    assert props["RoleArn"] == {"Fn::ImportValue": "tfhub-serving-dev-packaging-role-arn"}
    assert props["HubSha256"] == ""
    assert props["Limits"] == {"download_mb": 20480, "model_mb": 40960, "files": 100000, "ratio": 100}
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
        {
            "Handler": "packaging_handler.handler.is_complete",
            "Environment": {"Variables": {"WAIT_LIMIT_SECONDS": str(45 * 60 - 60)}},
            # It may stream a whole model.tar.gz to find the manifest: a full vCPU, Lambda's longest run.
            "MemorySize": 1769,
            "Timeout": 900,
        },
    )


def test_longest_allowed_job_still_fits(context, tmp_path):
    context["stages"]["dev"]["packaging"]["spot_max_wait_minutes"] = 40
    serving = Template.from_stack(synth_stage("dev", tmp_path, context).serving)
    (resource,) = serving.find_resources("Custom::TfHubPackagingJob").values()
    assert int(resource["Properties"]["ServiceTimeout"]) == 3600
    assert resource["Properties"]["SpotMaxWaitSeconds"] == 2400


def test_handlers_are_current_python_and_scoped_to_this_stages_jobs(synthesized):
    serving = synthesized("dev").serving
    for handler in ("packaging_handler.handler.on_event", "packaging_handler.handler.is_complete"):
        serving.has_resource_properties("AWS::Lambda::Function", {"Handler": handler, "Runtime": "python3.14"})
    _, policy = only(serving, "AWS::IAM::Policy", {"PolicyName": Match.string_like_regexp("HandlerPermissions")})
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements) == {"RunThisStagesJobs", "PassThePackagingRoleToSageMaker", "ReadJobManifests"}
    prefix = synthesized("dev").stage.config.job_name_prefix
    run = statements["RunThisStagesJobs"]
    assert run["Action"] == [
        "sagemaker:AddTags",
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
    ]
    assert "".join(p for p in run["Resource"]["Fn::Join"][1] if isinstance(p, str)).endswith(
        f":training-job/{prefix}-*"
    )
    passing = statements["PassThePackagingRoleToSageMaker"]
    assert passing["Action"] == "iam:PassRole"
    assert passing["Resource"] == {"Fn::ImportValue": "tfhub-serving-dev-packaging-role-arn"}
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    manifests = statements["ReadJobManifests"]
    assert manifests["Action"] == "s3:GetObject"
    assert manifests["Resource"]["Fn::Join"][1][-1] == f"/artifacts/packaging/{prefix}-*"


def test_the_job_may_read_its_own_source_and_nothing_else_of_the_assets_bucket(synthesized):
    serving = synthesized("dev").serving
    _, policy = only(serving, "AWS::IAM::Policy", {"PolicyName": Match.string_like_regexp("SourceRead")})
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "s3:GetObject"
    resource = json.dumps(statement["Resource"])
    assert "cdk-hnb659fds-assets-" in resource and "*" not in resource
    assert policy["Properties"]["Roles"] == [
        {
            "Fn::Select": [
                1,
                {
                    "Fn::Split": [
                        "/",
                        {
                            "Fn::Select": [
                                5,
                                {"Fn::Split": [":", {"Fn::ImportValue": "tfhub-serving-dev-packaging-role-arn"}]},
                            ]
                        },
                    ]
                },
            ]
        }
    ]


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


def test_a_cached_source_archive_is_shipped_only_if_it_still_has_its_digest(tmp_path):
    archive, digest = source_archive.build(JOB, cache_root=tmp_path)
    archive.write_bytes(b"import os; os.system('curl evil')")
    again, same = source_archive.build(JOB, cache_root=tmp_path)
    assert (again, same) == (archive, digest)
    assert hashlib.sha256(again.read_bytes()).hexdigest() == digest


def test_a_cache_folder_others_may_write_is_refused(tmp_path):
    shared = tmp_path / f"tfhub-packaging-source-{os.getuid()}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(RuntimeError, match="not a folder only you can write"):
        source_archive.build(JOB, cache_root=tmp_path)
