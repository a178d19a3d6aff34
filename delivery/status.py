"""`make status STAGE=...`: one screen for a stage, or `--json` for scripts.

Its stacks and their states, the endpoint's status and variants (instance type and
current/desired count, or the serverless settings), the artifact and digest it
serves (and, for an uncompressed prefix, whether it holds exactly its
manifest's files), the last promotion (from where, when, which commit, its smoke verdict),
its alarms' states, the last packaging job and how long it took (or has been
running), and the dashboard's URL. A missing piece (a stage never deployed, a
failed endpoint, no promotion, job, dashboard or alarm) is stated as such, never
a traceback or a silent gap; `--json` has every key, null where a piece is missing.

The stacks are read first, and what cannot read them (no credentials, access
denied on DescribeStacks) is the tools' usual one line and exit code 1
(`tools/cli.py`). Every other section (endpoint, last promotion, alarms, last
packaging job, served files) is read on its own: an AWS refusal or error in one (a deleted
endpoint config, AccessDenied on DescribeAlarms, a promotion record that does not
parse) is one line in that section saying what could not be read and why, the
other sections still show, and the exit code stays 0 (the screen is the answer).
In `--json` such a section is null and `errors` (always there, `{}` when all
were read) maps its key to that line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from delivery import artifact_forms as forms
from delivery import records
from delivery.deployed import DeployedStage, deployed_stage
from delivery.status_screen import NOT_DEPLOYED, render
from stacks.stage.names import ServingOutputs
from stacks.stage.schema import StageConfig
from tools.cli import UserError, explain, run


def stacks(cloudformation, config: StageConfig) -> dict[str, dict[str, Any]]:
    """The stage's two stacks: status, CloudFormation's reason and outputs, or NOT_DEPLOYED."""
    found: dict[str, dict[str, Any]] = {}
    for name in (config.storage_stack_name, config.serving_stack_name):
        try:
            (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if "does not exist" not in error.response["Error"].get("Message", ""):
                raise
            found[name] = {"status": NOT_DEPLOYED}
            continue
        found[name] = {
            "status": stack["StackStatus"],
            "reason": stack.get("StackStatusReason"),
            "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        }
    return found


def described_endpoint(sagemaker, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint's answer, or None when there is no such endpoint."""
    try:
        return sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as error:
        # A missing endpoint is a ValidationException "Could not find endpoint ..."
        # (SageMaker's answer, which moto copies; the API reference names no
        # not-found error for DescribeEndpoint). Anything else (no permission,
        # throttling) is not "no endpoint".
        if "Could not find endpoint" not in error.response["Error"].get("Message", ""):
            raise
        return None


def endpoint(sagemaker, name: str) -> dict[str, Any] | None:
    described = described_endpoint(sagemaker, name)
    if described is None:
        return None
    variants = []
    for variant in described.get("ProductionVariants", []):
        serverless = variant.get("CurrentServerlessConfig") or variant.get("DesiredServerlessConfig")
        variants.append(
            {
                "name": variant.get("VariantName"),
                **(
                    {"serverless": serverless}
                    if serverless
                    else {
                        "instance_type": variant.get("InstanceType") or _config_instance_type(sagemaker, described),
                        "current_instances": variant.get("CurrentInstanceCount"),
                        "desired_instances": variant.get("DesiredInstanceCount"),
                    }
                ),
            }
        )
    return {
        "status": described["EndpointStatus"],
        "failure": described.get("FailureReason"),
        "since": str(described.get("LastModifiedTime")),
        "config": described.get("EndpointConfigName"),
        "variants": variants,
    }


def _config_instance_type(sagemaker, described: dict[str, Any]) -> str | None:
    """DescribeEndpoint leaves out the instance type; the endpoint config has it."""
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    return next((v.get("InstanceType") for v in config["ProductionVariants"]), None)


def last_promotion(s3, bucket: str | None) -> dict[str, Any] | None:
    if not bucket:
        return None
    newest = records.newest(s3, bucket)
    if newest is None:
        return None
    record = records.require(s3, bucket, newest)
    smoke = record.get("smoke") or {}
    return {
        "record": record["record"],
        "from": record.get("source_stage"),
        "rollback_to": record.get("rollback_to"),
        "time": record.get("time"),
        "commit": record.get("commit"),
        "digest": record.get("digest"),
        "smoke": "passed" if smoke.get("passed") else ("failed" if smoke else "not run"),
        # A deploy's first record alone: it failed, was cancelled, or is still running.
        "finished": record.get("deploy") != records.STARTED,
    }


def served_files(s3, artifact: str | None) -> dict[str, list[str]] | None:
    """The objects under the served uncompressed prefix that its manifest does not list,
    and the listed files it lacks; None when the stage serves an archive or nothing.

    Promoted objects are write-once (the bucket refuses overwrites), but a holder of
    the promotion role can still add an object beside them, and SageMaker downloads
    every object under the prefix at each instance start (CreateModel,
    S3ModelDataSource): one its Model's role may not read (`code/inference.py`, a
    higher model version) fails the next scale-out, one inside the model version's
    folder is served from it. The listing shows either.
    """
    if not artifact or forms.is_archive(artifact):
        return None
    bucket, prefix = forms.split(artifact)
    try:
        listed = {entry["path"] for entry in forms.read_manifest(s3, artifact)["files"]} | {forms.MANIFEST}
        # The raw listing: a zero-byte folder object or an odd key added is named, not a reason to stop.
        present = {key[len(prefix) :] for key, _ in forms.listed(s3, bucket, prefix)}
    except forms.ArtifactError as error:
        raise UserError(str(error)) from error
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{artifact}'s {forms.MANIFEST} is not a manifest ({error!r})") from error
    return {"unlisted": sorted(present - listed), "missing": sorted(listed - present)}


def alarms(cloudwatch, names: tuple[str, ...]) -> dict[str, str]:
    if not names:
        return {}
    found = {
        a["AlarmName"]: a["StateValue"] for a in cloudwatch.describe_alarms(AlarmNames=list(names))["MetricAlarms"]
    }
    return {name: found.get(name, "MISSING") for name in names}


def last_packaging_job(sagemaker, prefix: str, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """The newest job: its status, and its seconds from creation to its end (what a
    deploy waited, provisioning included) or, while in progress, until `now`."""
    jobs = sagemaker.list_training_jobs(NameContains=prefix, SortBy="CreationTime", SortOrder="Descending")
    mine = [j for j in jobs.get("TrainingJobSummaries", []) if j["TrainingJobName"].startswith(f"{prefix}-")]
    if not mine:
        return None
    job = sagemaker.describe_training_job(TrainingJobName=mine[0]["TrainingJobName"])
    status = job["TrainingJobStatus"]
    end = job.get("TrainingEndTime")
    if end is None and status == "InProgress":
        end = now or dt.datetime.now(dt.UTC)
    return {
        "name": job["TrainingJobName"],
        "status": status,
        "seconds": round((end - job["CreationTime"]).total_seconds()) if end else None,
        "failure": job.get("FailureReason"),
    }


def status(stage: DeployedStage) -> dict[str, Any]:
    config = stage.config
    # Not a section: what cannot read the stacks cannot say anything about the stage.
    found = stacks(stage.client("cloudformation"), config)
    outputs = found[config.serving_stack_name].get("outputs", {})
    deployed = found[config.storage_stack_name]["status"] != NOT_DEPLOYED
    errors: dict[str, str] = {}

    def section(key: str, read: Callable[[], Any]) -> Any:
        """`read()`, or None with the reason in `errors` when AWS refuses or a record does not parse."""
        try:
            return read()
        except (ClientError, UserError) as error:
            # One line on the screen, however the error's own message is laid out.
            errors[key] = " ".join((explain(error) or str(error)).split())
            return None

    sagemaker, packaging = stage.client("sagemaker"), config.packaging is not None
    return {
        "stage": config.stage,
        "account": config.account,
        "region": config.region,
        "stacks": {name: {k: v for k, v in s.items() if k != "outputs"} for name, s in found.items()},
        "serving_stack": config.serving_stack_name,
        "endpoint": section("endpoint", lambda: endpoint(sagemaker, config.endpoint_name)),
        "artifact": outputs.get(ServingOutputs.ARTIFACT_LOCATION),
        "digest": outputs.get(ServingOutputs.TREE_DIGEST),
        "served_files": section(
            "served_files", lambda: served_files(stage.client("s3"), outputs.get(ServingOutputs.ARTIFACT_LOCATION))
        ),
        "dashboard": outputs.get(ServingOutputs.DASHBOARD_URL),
        "last_promotion": section(
            "last_promotion", lambda: last_promotion(stage.client("s3"), _bucket(stage, config) if deployed else None)
        ),
        "alarms": section(
            "alarms", lambda: alarms(stage.client("cloudwatch"), config.alarm_names if config.alarms else ())
        ),
        "packages": packaging,
        "last_packaging_job": section(
            "last_packaging_job", lambda: last_packaging_job(sagemaker, config.job_name_prefix) if packaging else None
        ),
        "errors": errors,
    }


def _bucket(stage: DeployedStage, config: StageConfig) -> str | None:
    for page in stage.client("cloudformation").get_paginator("list_exports").paginate():
        for export in page["Exports"]:
            if export["Name"] == config.names.bucket_name_export:
                return export["Value"]
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    print_report(status(deployed_stage(args.stage)), as_json=args.json)
    return 0


def print_report(report: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(report, indent=2, default=str) if as_json else render(report))


if __name__ == "__main__":
    sys.exit(run(main))
