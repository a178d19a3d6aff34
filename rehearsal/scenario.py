"""`make rehearse`: the README's commands, exactly as written, on emulators.

A copy of the project (its tool folders linked, not reinstalled) runs
`npx cdk bootstrap`, `make deploy STAGE=dev`, `make logs`, `make digest`,
`make diff`, updates, a failing update, `npx cdk deploy ... storage` and
`make promote FROM=dev TO=staging`, and `make destroy` of both stages, in a
terminal (the deploy's IAM prompt is answered yes), with only the emulators'
endpoints and throwaway credentials added to the environment. After each
command the emulated account is inspected for what the command should have
done. What differs from a real account is printed with `!`, never as `✓`.

The copy's cdk.json differs from the project's in what an account would
supply: dev's hub handle points at a loopback hub serving a demo model, and
staging's account and region are the emulators'.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
from typing import Any, Callable

from promotion.artifact_forms import read_manifest
from rehearsal import terminal
from rehearsal.cloudformation import as_sent_to_custom_resource, resolve
from rehearsal.emulators import ACCOUNT, REGION, Emulators, emulators

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROJECT = "tfhub-serving"
# Installed tool folders, linked into the copy (make sees them as installed).
_LINKED = (".venv", ".venv-emulators", ".venv-checkov", "node_modules")
_NOT_COPIED = shutil.ignore_patterns(".git", *_LINKED, "cdk.out", "__pycache__", ".pytest_cache", "*.pyc")
# `--require-approval broadening`: a person confirms IAM changes.
APPROVE = {"Do you wish to deploy these changes? (y/n)": "y\n", "Are you sure you want to delete": "y\n"}


class RehearsalFailed(AssertionError):
    """A check did not hold; the message says which and what was seen."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RehearsalFailed(message)


def copy_project(target: pathlib.Path) -> None:
    # copy2 keeps modification times, so make does not reinstall the linked tools.
    shutil.copytree(ROOT, target, ignore=_NOT_COPIED, copy_function=shutil.copy2)
    for name in _LINKED:
        (target / name).symlink_to(ROOT / name, target_is_directory=True)


class Rehearsal:
    """One run of the scenario; `steps` names what was verified, in order."""

    def __init__(self, aws: Emulators, workdir: pathlib.Path, hub_url: str,
                 out: Callable[[str], None] = print) -> None:
        self.aws, self.hub_url, self.out = aws, hub_url, out
        self.project = workdir / "project"
        self.steps: list[str] = []
        # A user's shell: no AWS or CDK settings of this machine, and not inside
        # another make (`make test` runs this), which would change make's output.
        self.env = {
            **{k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "CDK_")) and k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")},
            **aws.user_env,
        }
        self.cloudformation = aws.client("cloudformation")
        self.s3 = aws.client("s3")
        self.sagemaker = aws.client("sagemaker")

    # --- reporting -----------------------------------------------------------

    def verified(self, step: str, detail: str) -> None:
        self.steps.append(step)
        self.out(f"  ✓ {detail}")

    def note(self, text: str) -> None:
        self.out(f"  ! {text}")

    # --- the user's commands ---------------------------------------------------

    def command(self, *words: str, expect_success: bool = True) -> terminal.Finished:
        self.out(f"$ {' '.join(words)}")
        finished = terminal.run(list(words), self.project, self.env, APPROVE)
        if expect_success and finished.returncode != 0:
            raise RehearsalFailed(f"`{finished.command}` failed ({finished.returncode}):\n{finished.output[-4000:]}")
        return finished

    def edit_config(self, edit: Callable[[dict[str, Any]], None]) -> None:
        path = self.project / "cdk.json"
        document = json.loads(path.read_text())
        edit(document["context"]["stages"])
        path.write_text(json.dumps(document, indent=2))

    # --- what is in the emulated account -------------------------------------

    def stacks(self) -> dict[str, str]:
        return {s["StackName"]: s["StackStatus"] for s in self.cloudformation.list_stacks()["StackSummaries"]
                if s["StackStatus"] != "DELETE_COMPLETE"}

    def outputs(self, stack: str) -> dict[str, str]:
        (description,) = self.cloudformation.describe_stacks(StackName=stack)["Stacks"]
        return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}

    def physical_id(self, stack: str, resource_type: str) -> str:
        resources = self.cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
        (resource,) = [r for r in resources if r["ResourceType"] == resource_type]
        return resource["PhysicalResourceId"]

    def jobs(self) -> list[str]:
        return sorted(j["TrainingJobName"] for j in self.sagemaker.list_training_jobs()["TrainingJobSummaries"])

    def serving(self, endpoint: str) -> dict[str, Any]:
        """The endpoint, its config and its model, as SageMaker describes them."""
        described = self.sagemaker.describe_endpoint(EndpointName=endpoint)
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        (variant,) = config["ProductionVariants"]
        model = self.sagemaker.describe_model(ModelName=variant["ModelName"])
        return {"endpoint": described, "config": config, "variant": variant, "model": model}

    def expected_job(self) -> tuple[str, dict[str, Any]]:
        """The job name and request the handler must send, from the deployed template."""
        from stacks.packaging_handler import handler

        template = json.loads((self.project / "cdk.out" / f"{PROJECT}-dev-serving.template.json").read_text())
        (resource,) = [r for r in template["Resources"].values() if r["Type"] == "Custom::TfHubPackagingJob"]
        exports = {e["Name"]: e["Value"] for e in self.cloudformation.list_exports()["Exports"]}
        pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com"}
        properties = as_sent_to_custom_resource(resolve(resource["Properties"], exports, pseudo))
        props = handler.parse_properties(properties)
        name = handler.job_name(props)
        return name, handler.training_job_request(name, props)

    def manifest(self, artifact: str) -> dict[str, Any]:
        return read_manifest(self.s3, artifact)

    def tag_buckets_as_cloudformation_would(self, stack: str) -> None:
        """ministack's CloudFormation drops AWS::S3::Bucket Tags, and CDK's
        auto-delete handler empties a bucket on destroy only when it carries its tag."""
        self.note("ministack's CloudFormation drops bucket Tags: the template's tags are put on "
                  f"{stack}'s buckets before make destroy, as CloudFormation would have")
        template = json.loads((self.project / "cdk.out" / f"{stack}.template.json").read_text())
        resources = self.cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::S3::Bucket" and resource["Properties"].get("Tags"):
                self.s3.put_bucket_tagging(Bucket=physical[logical_id],
                                           Tagging={"TagSet": resource["Properties"]["Tags"]})

    # --- the scenario --------------------------------------------------------

    def run(self) -> list[str]:
        copy_project(self.project)
        self.edit_config(self.point_at_emulators)
        self.note("the copy's cdk.json: dev packages a demo model from a loopback hub; staging's "
                  f"account and region are the emulators' ({ACCOUNT}, {REGION})")
        self.refuses_an_unknown_stage()
        self.command("npx", "cdk", "bootstrap", f"aws://{ACCOUNT}/{REGION}")
        self.verified("bootstrap", "npx cdk bootstrap created the CDKToolkit stack")
        first = self.deploys_dev()
        self.follows_and_reports(first)
        second = self.diff_then_update(first)
        self.runtime_limit_starts_no_job(second)
        self.failed_update_rolls_back(second)
        self.promotes_to_staging(second)
        self.destroys("staging")
        self.dev_on_instances()
        self.destroys("dev")
        self.strict_sagemaker_saw_everything()
        return self.steps

    def point_at_emulators(self, stages: dict[str, Any]) -> None:
        stages["dev"]["model"]["hub_handle"] = f"{self.hub_url}/v1"
        stages["staging"]["account"], stages["staging"]["region"] = ACCOUNT, REGION

    def refuses_an_unknown_stage(self) -> None:
        finished = self.command("make", "deploy", "STAGE=qa", expect_success=False)
        line = "Configuration error: stage: 'qa' is not declared; allowed: dev, prod, staging"
        check(finished.returncode != 0 and line in finished.output.splitlines(),
              f"make deploy STAGE=qa did not fail in one line:\n{finished.output[-2000:]}")
        check("Traceback" not in finished.output, "make deploy STAGE=qa printed a traceback")
        self.verified("unknown stage", "make deploy STAGE=qa fails with one configuration line")

    def deploys_dev(self) -> dict[str, Any]:
        finished = self.command("make", "deploy", "STAGE=dev")
        stacks = self.stacks()
        dev = {f"{PROJECT}-dev-storage", f"{PROJECT}-dev-serving"}
        check(set(stacks) == dev | {"CDKToolkit"}, f"make deploy STAGE=dev left these stacks: {stacks}")
        check(all(stacks[s] == "CREATE_COMPLETE" for s in dev), f"stack states: {stacks}")
        check(all(f"✅  {s}" in finished.output for s in dev), "the CLI did not report both dev stacks deployed")
        self.verified("deploy", "make deploy STAGE=dev selected and deployed exactly the dev stage's two stacks")

        name, request = self.expected_job()
        check(self.jobs() == [name], f"expected one training job {name}, SageMaker has {self.jobs()}")
        sent = self.aws.sagemaker.requests[name]
        for key in ("RoleArn", "HyperParameters", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
                    "StoppingCondition", "AlgorithmSpecification", "Tags"):
            check(sent.get(key) == request.get(key), f"{key} of {name}: {sent.get(key)} != {request.get(key)}")
        self.verified("training job", f"the handler started {name} with exactly the request the template implies")

        outputs = self.outputs(f"{PROJECT}-dev-serving")
        manifest = self.manifest(outputs["ArtifactLocation"])
        check(outputs["TreeDigest"] == manifest["tree_digest"], "TreeDigest differs from the artifact's manifest")
        self.verified("artifact", f"the job ran; ArtifactLocation {outputs['ArtifactLocation']} and its "
                      "TreeDigest are the job's")

        serving = self.serving(f"{PROJECT}-dev")
        check(serving["endpoint"]["EndpointStatus"] == "InService", f"endpoint {serving['endpoint']['EndpointStatus']}")
        check(serving["model"]["PrimaryContainer"].get("ModelDataUrl") == outputs["ArtifactLocation"]
              and outputs["ArtifactLocation"].endswith("/output/model.tar.gz"),
              f"the serverless Model serves {_model_data(serving['model'])}, not the job's model.tar.gz")
        check("ServerlessConfig" in serving["variant"], f"dev's variant: {serving['variant']}")
        self.verified("endpoint", "CloudFormation created Model, EndpointConfig and Endpoint "
                      f"{PROJECT}-dev: serverless, serving the job's model.tar.gz through ModelDataUrl")
        self.note("moto's endpoints are in service at once and serve nothing: invoking one is not rehearsed")
        return {"job": name, "outputs": outputs, "serving": serving}

    def follows_and_reports(self, deployed: dict[str, Any]) -> None:
        logs = self.command("make", "logs", "STAGE=dev")
        check("[packaging] Packaged" in logs.output and f"{deployed['job']}: Completed" in logs.output,
              f"make logs did not show the job's lines and its end:\n{logs.output[-2000:]}")
        digest = self.command("make", "digest", "STAGE=dev")
        check(digest.output.strip().splitlines()[-1] == deployed["outputs"]["TreeDigest"],
              f"make digest printed {digest.output.strip()[-200:]!r}")
        self.verified("logs and digest", "make logs showed the job's own lines; make digest printed its digest")

    def diff_then_update(self, before: dict[str, Any]) -> dict[str, Any]:
        unchanged = self.command("make", "diff", "STAGE=dev")
        check("Number of stacks with differences: 0" in unchanged.output,
              f"make diff right after the deploy reports differences:\n{unchanged.output[-2000:]}")
        self.edit_config(lambda stages: stages["dev"]["model"].update(hub_handle=f"{self.hub_url}/v2"))
        changed = self.command("make", "diff", "STAGE=dev")
        check("Number of stacks with differences: 1" in changed.output and "HubHandle" in changed.output,
              f"make diff after a new hub handle does not report it:\n{changed.output[-3000:]}")
        self.verified("diff", "make diff reports no difference after a deploy and the new hub handle after an edit")

        self.command("make", "deploy", "STAGE=dev")
        name, _ = self.expected_job()
        check(name != before["job"] and self.jobs() == sorted([before["job"], name]),
              f"a new handle should add one job; SageMaker has {self.jobs()}")
        check(self.physical_id(f"{PROJECT}-dev-serving", "Custom::TfHubPackagingJob") == name,
              "the custom resource kept its old physical id")
        outputs = self.outputs(f"{PROJECT}-dev-serving")
        serving = self.serving(f"{PROJECT}-dev")
        check(serving["model"]["ModelName"] != before["serving"]["model"]["ModelName"], "the Model was not replaced")
        check(serving["config"]["EndpointConfigName"] != before["serving"]["config"]["EndpointConfigName"],
              "the EndpointConfig was not replaced")
        check(_model_data(serving["model"]) == outputs["ArtifactLocation"] != before["outputs"]["ArtifactLocation"],
              "the endpoint does not serve the new artifact")
        models = [m["ModelName"] for m in self.sagemaker.list_models()["Models"]]
        check(before["serving"]["model"]["ModelName"] not in models, f"the replaced Model is still there: {models}")
        self.verified("update", f"new handle: job {name}, Model and EndpointConfig replaced, the replaced "
                      f"ones deleted, endpoint {PROJECT}-dev updated in place to serve the new artifact")
        return {"job": name, "outputs": outputs, "serving": serving}

    def custom_resource_updates(self) -> int:
        events = self.cloudformation.describe_stack_events(StackName=f"{PROJECT}-dev-serving")["StackEvents"]
        return sum(1 for e in events if e["ResourceType"] == "Custom::TfHubPackagingJob"
                   and e["ResourceStatus"] == "UPDATE_COMPLETE")

    def runtime_limit_starts_no_job(self, current: dict[str, Any]) -> None:
        updates = self.custom_resource_updates()
        self.edit_config(lambda stages: stages["dev"]["packaging"].update(max_runtime_minutes=25))
        self.command("make", "deploy", "STAGE=dev")
        check(self.custom_resource_updates() > updates, "CloudFormation sent the custom resource no update")
        check(len(self.jobs()) == 2, f"a runtime-limit change started a job: {self.jobs()}")
        check(self.physical_id(f"{PROJECT}-dev-serving", "Custom::TfHubPackagingJob") == current["job"],
              "the custom resource changed its physical id")
        self.verified("no job", "a runtime-limit change reached the handler, which started no job")

    def failed_update_rolls_back(self, current: dict[str, Any]) -> None:
        self.edit_config(lambda stages: stages["dev"]["model"].update(hub_handle=f"{self.hub_url}/missing"))
        failed = self.command("make", "deploy", "STAGE=dev", expect_success=False)
        check(failed.returncode != 0, "make deploy of a handle that does not exist succeeded")
        events = self.cloudformation.describe_stack_events(StackName=f"{PROJECT}-dev-serving")["StackEvents"]
        reasons = [e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"].endswith("_FAILED")]
        check(any("HTTP 404" in reason for reason in reasons), f"the job's reason is not in the stack events: {reasons[:3]}")
        (stack,) = self.cloudformation.describe_stacks(StackName=f"{PROJECT}-dev-serving")["Stacks"]
        check(stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", f"the serving stack is {stack['StackStatus']}")
        serving = self.serving(f"{PROJECT}-dev")
        check(_model_data(serving["model"]) == current["outputs"]["ArtifactLocation"],
              "after the rollback the endpoint no longer serves the previous artifact")
        self.verified("rollback", "a job that fails (hub answers 404) fails make deploy with the job's reason "
                      "in the stack events; the rollback leaves the previous artifact serving")
        self.edit_config(lambda stages: stages["dev"]["model"].update(hub_handle=f"{self.hub_url}/v2"))

    def promotes_to_staging(self, dev: dict[str, Any]) -> None:
        self.command("npx", "cdk", "deploy", "-c", "stage=staging", f"{PROJECT}-staging-storage")
        finished = self.command("make", "promote", "FROM=dev", "TO=staging")
        outputs = self.outputs(f"{PROJECT}-staging-serving")
        digest = dev["outputs"]["TreeDigest"]
        check(outputs["TreeDigest"] == digest, f"staging reports {outputs['TreeDigest']}, dev served {digest}")
        check(outputs["ArtifactLocation"].endswith(f"/artifacts/promoted/{digest}/model/"),
              f"staging serves {outputs['ArtifactLocation']}")
        serving = self.serving(f"{PROJECT}-staging")
        source = serving["model"]["PrimaryContainer"].get("ModelDataSource", {}).get("S3DataSource", {})
        check(source.get("S3Uri") == outputs["ArtifactLocation"] and source.get("CompressionType") == "None",
              "staging's Model does not serve the uncompressed copy")
        check(serving["variant"].get("InstanceType") == "ml.m5.large", f"staging's variant: {serving['variant']}")
        check('"digest": "' + digest in finished.output, "make promote did not print its record")
        self.verified("promote", "npx cdk deploy of staging's storage, then make promote FROM=dev TO=staging: "
                      "dev's model.tar.gz unpacked into staging's bucket, verified by digest, staging deployed "
                      "pinned to it on instances (ModelDataSource)")

    def dev_on_instances(self) -> None:
        """dev switched to instances: refused in place, deployed after the serving stack goes."""
        self.edit_config(lambda stages: stages["dev"].update(serving={"instances": {"type": "ml.m5.large", "count": 1}}))
        refused = self.command("make", "deploy", "STAGE=dev", expect_success=False)
        events = self.cloudformation.describe_stack_events(StackName=f"{PROJECT}-dev-serving")["StackEvents"]
        reasons = " ".join(e.get("ResourceStatusReason", "") for e in events)
        check(refused.returncode != 0 and "endpoint-kind-change" in reasons,
              f"switching dev to instances in place was not refused by the rule: {reasons[:500]}")
        self.verified("kind change", "switching dev from serverless to instances in place is refused "
                      "(rule endpoint-kind-change), as SageMaker refuses it, and rolled back")
        self.command("npx", "cdk", "destroy", "-c", "stage=dev", f"{PROJECT}-dev-serving")
        self.command("make", "deploy", "STAGE=dev")
        outputs = self.outputs(f"{PROJECT}-dev-serving")
        serving = self.serving(f"{PROJECT}-dev")
        source = serving["model"]["PrimaryContainer"].get("ModelDataSource", {}).get("S3DataSource", {})
        check(outputs["ArtifactLocation"].endswith("/output/model/") and source.get("S3Uri") == outputs["ArtifactLocation"],
              f"dev on instances serves {_model_data(serving['model'])}, not the job's uncompressed prefix")
        check(self.manifest(outputs["ArtifactLocation"])["tree_digest"] == outputs["TreeDigest"],
              "the uncompressed artifact's manifest does not match TreeDigest")
        check(serving["variant"].get("InstanceType") == "ml.m5.large", f"dev's variant: {serving['variant']}")
        self.verified("instances", "after npx cdk destroy of dev's serving stack, make deploy STAGE=dev on "
                      "instances packages uncompressed (CompressionType NONE) and serves the prefix through "
                      "ModelDataSource")

    def strict_sagemaker_saw_everything(self) -> None:
        checked = self.aws.sagemaker.checked
        needed = {"CreateTrainingJob", "CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint"}
        check(needed <= set(checked), f"the rulebook did not see every kind of request: {sorted(checked)}")
        self.verified("strict", "every SageMaker request went through the rulebook first: "
                      + ", ".join(f"{op} x{checked[op]}" for op in sorted(needed)))

    def destroys(self, stage: str) -> None:
        stacks = [f"{PROJECT}-{stage}-storage", f"{PROJECT}-{stage}-serving"]
        self.tag_buckets_as_cloudformation_would(stacks[0])
        buckets = [r["PhysicalResourceId"] for r in self.cloudformation.describe_stack_resources(
            StackName=stacks[0])["StackResources"] if r["ResourceType"] == "AWS::S3::Bucket"]
        finished = self.command("make", "destroy", f"STAGE={stage}")
        check(not set(stacks) & set(self.stacks()), f"stacks left after make destroy: {self.stacks()}")
        left = set(buckets) & {b["Name"] for b in self.s3.list_buckets()["Buckets"]}
        check(not left, f"buckets left: {left}")
        check(f"Nothing of stage {stage} is left in SageMaker" in finished.output,
              f"the leftover check did not pass:\n{finished.output[-2000:]}")
        endpoints = [e["EndpointName"] for e in self.sagemaker.list_endpoints()["Endpoints"]]
        check(f"{PROJECT}-{stage}" not in endpoints, f"endpoint left: {endpoints}")
        self.verified(f"destroy {stage}", f"make destroy STAGE={stage} removed both stacks, the emptied "
                      "buckets and the SageMaker resources; its leftover check passed")


def _model_data(model: dict[str, Any]) -> str:
    container = model["PrimaryContainer"]
    if "ModelDataSource" in container:
        return container["ModelDataSource"]["S3DataSource"]["S3Uri"]
    return container["ModelDataUrl"]


def rehearse(out: Callable[[str], None] = print) -> list[str]:
    from tools.demo_model import compressed_archive, save_text_model
    from tools.hub_server import HubServer

    with tempfile.TemporaryDirectory(prefix="rehearsal-") as work:
        workdir = pathlib.Path(work)
        archive = compressed_archive(save_text_model(str(workdir / "demo" / "model")))
        with HubServer() as hub, emulators(workdir) as aws:
            for version in ("v1", "v2"):
                hub.routes[f"/{version}"] = (200, archive)
            out(f"emulators: ministack {aws.ministack_url}, SageMaker {aws.sagemaker.url} "
                f"(moto {aws.moto_url}); hub {hub.url}")
            return Rehearsal(aws, workdir, hub.url, out).run()
