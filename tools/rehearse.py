"""`make rehearse`: the real `cdk deploy` / update / `cdk destroy` of a stage, without AWS.

Two emulators on loopback, started here and stopped afterwards even on failure:
ministack (CloudFormation, S3, IAM, Lambda as local processes, Step Functions,
CloudWatch Logs) and moto's server (the SageMaker control plane). ministack is
started with AWS_ENDPOINT_URL_SAGEMAKER pointing at moto, so the custom
resource's handlers reach moto's SageMaker unchanged.

What the emulators cannot do, and what this does instead (it says so as it runs):
- ministack's CloudFormation rejects AWS::SageMaker::* types: they are taken
  out of the serving template before `cdk deploy` and deployed, with their
  references resolved, as a stack of their own on moto's CloudFormation.
- moto's training jobs complete at once and run nothing: the packaging job is
  run here, before the deploy, through the SageMaker training toolkit with the
  very request the handler will send (its source downloaded from the emulated
  assets bucket), and its output uploaded where SageMaker would put it.

Every check prints what it verified; a failed check stops the run. The product's
stacks are used as they are; only the stage's hub handle is pointed at a
loopback hub serving a demo model.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any, Callable, Iterator

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
CDK = ROOT / "node_modules" / ".bin" / "cdk"
EMULATORS_VENV = ROOT / ".venv-emulators"
ACCOUNT, REGION = "000000000000", "us-east-1"
STAGE = "dev"
_EMULATED_TYPES = ("AWS::SageMaker::",)


class RehearsalFailed(AssertionError):
    """A check did not hold; the message says which and what was seen."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RehearsalFailed(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def emulators(workdir: pathlib.Path) -> Iterator[dict[str, str]]:
    """Start moto and ministack on free loopback ports; yield the AWS environment."""
    moto_port, ministack_port = free_port(), free_port()
    python_bin = EMULATORS_VENV / "bin"
    node_bin = ROOT / "node_modules" / ".bin"
    base_env = {**os.environ, "PATH": f"{node_bin}{os.pathsep}{os.environ['PATH']}"}
    processes = []
    try:
        processes.append(
            _spawn(
                [str(python_bin / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                base_env,
                workdir / "moto.log",
            )
        )
        processes.append(
            _spawn(
                [str(python_bin / "ministack")],
                {
                    **base_env,
                    "GATEWAY_PORT": str(ministack_port),
                    "BIND_HOST": "127.0.0.1",
                    "IOT_MTLS_ENABLED": "false",
                    # Inherited by the Lambda processes ministack starts.
                    "AWS_ENDPOINT_URL_SAGEMAKER": f"http://127.0.0.1:{moto_port}",
                    # The AWS SDK the real Node.js Lambda runtime bundles.
                    "NODE_PATH": str(ROOT / "node_modules"),
                },
                workdir / "ministack.log",
            )
        )
        _wait_for(f"http://127.0.0.1:{moto_port}/moto-api/")
        _wait_for(f"http://127.0.0.1:{ministack_port}/_ministack/health")
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ministack_port}",
            "MOTO_URL": f"http://127.0.0.1:{moto_port}",
            "AWS_ACCESS_KEY_ID": "rehearsal",
            "AWS_SECRET_ACCESS_KEY": "rehearsal",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "CDK_DEFAULT_ACCOUNT": ACCOUNT,
            "CDK_DEFAULT_REGION": REGION,
        }
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)


def _spawn(command: list[str], env: dict[str, str], log: pathlib.Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(
        command, env=env, stdout=handle, stderr=subprocess.STDOUT,
        cwd=log.parent, start_new_session=True,
    )


def _wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RehearsalFailed(f"emulator at {url} did not start within {seconds:.0f} s")


class Rehearsal:
    """One stage's lifecycle on the emulators; `steps` collects what was verified."""

    def __init__(self, workdir: pathlib.Path, env: dict[str, str], hub_url: str,
                 out: Callable[[str], None] = print) -> None:
        self.workdir, self.hub_url, self.out = workdir, hub_url, out
        self.env = {**os.environ, **env, "PATH": f"{CDK.parent}{os.pathsep}{os.environ['PATH']}"}
        self.steps: list[str] = []
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        ministack, moto = env["AWS_ENDPOINT_URL"], env["MOTO_URL"]
        self.cloudformation = session.client("cloudformation", endpoint_url=ministack)
        self.s3 = session.client("s3", endpoint_url=ministack)
        self.lambda_ = session.client("lambda", endpoint_url=ministack)
        self.sagemaker = session.client("sagemaker", endpoint_url=moto)
        self.moto_cloudformation = session.client("cloudformation", endpoint_url=moto)
        self.project = self.workdir / "project"
        names = json.loads((ROOT / "cdk.json").read_text())["context"]
        self.project_name = names["project"]
        self.storage_stack = f"{self.project_name}-{STAGE}-storage"
        self.serving_stack = f"{self.project_name}-{STAGE}-serving"
        self.sagemaker_stack = f"{self.project_name}-{STAGE}-sagemaker-resources"

    # --- reporting -----------------------------------------------------------

    def verified(self, step: str, detail: str) -> None:
        self.steps.append(step)
        self.out(f"  ✓ {detail}")

    def note(self, text: str) -> None:
        self.out(f"  ! {text}")

    # --- the CDK CLI on a copy of the project -----------------------------------

    def write_project(self, hub_handle: str, max_runtime_minutes: int | None = None) -> None:
        """A copy of the app whose dev stage packages `hub_handle` (and, if given,
        with another job runtime limit); nothing else differs."""
        if self.project.exists():
            shutil.rmtree(self.project)
        self.project.mkdir(parents=True)
        shutil.copy(ROOT / "app.py", self.project)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for folder in ("stacks", "packaging_job"):
            shutil.copytree(ROOT / folder, self.project / folder, ignore=ignore)
        cdk_json = json.loads((ROOT / "cdk.json").read_text())
        cdk_json["app"] = f"{sys.executable} app.py"
        cdk_json["context"]["stages"][STAGE]["model"]["hub_handle"] = hub_handle
        if max_runtime_minutes:
            cdk_json["context"]["stages"][STAGE]["packaging"]["max_runtime_minutes"] = max_runtime_minutes
        (self.project / "cdk.json").write_text(json.dumps(cdk_json, indent=2))

    def cdk(self, *args: str, expect_success: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(CDK), *args, "--no-notices", "-c", f"stage={STAGE}"],
            cwd=self.project, env=self.env, capture_output=True, text=True, timeout=900,
        )
        if expect_success and result.returncode != 0:
            raise RehearsalFailed(f"cdk {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        return result

    def synth(self) -> pathlib.Path:
        assembly = self.workdir / "assembly"
        shutil.rmtree(assembly, ignore_errors=True)
        self.cdk("synth", "--quiet", "-o", str(assembly), "**")
        return assembly

    def serving_template_path(self, assembly: pathlib.Path) -> pathlib.Path:
        (path,) = assembly.glob("assembly-*/*Serving*.template.json")
        return path

    def take_out_sagemaker(self, assembly: pathlib.Path) -> dict[str, Any]:
        """Remove what ministack cannot create from the serving template; return it."""
        path = self.serving_template_path(assembly)
        template = json.loads(path.read_text())
        removed = {
            logical_id: resource
            for logical_id, resource in template["Resources"].items()
            if resource["Type"].startswith(_EMULATED_TYPES)
        }
        for logical_id in removed:
            del template["Resources"][logical_id]
        outputs = template.get("Outputs", {})
        template["Outputs"] = {
            key: value for key, value in outputs.items()
            if not any(logical_id in json.dumps(value) for logical_id in removed)
        }
        path.write_text(json.dumps(template))
        return {"Resources": removed, "Outputs": {k: v for k, v in outputs.items() if k not in template["Outputs"]}}

    # --- what SageMaker would do --------------------------------------------

    def exports(self) -> dict[str, str]:
        return {e["Name"]: e["Value"] for e in self.cloudformation.list_exports()["Exports"]}

    def resolve(self, value: Any, attributes: dict[tuple[str, str], str] | None = None,
                exports: dict[str, str] | None = None) -> Any:
        """Resolve the intrinsics the templates use, as CloudFormation would."""
        if exports is None:
            exports = self.exports()
        if isinstance(value, list):
            return [self.resolve(v, attributes, exports) for v in value]
        if not isinstance(value, dict):
            return value
        if "Fn::ImportValue" in value:
            return exports[value["Fn::ImportValue"]]
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self.resolve(p, attributes, exports)) for p in parts)
        if "Fn::Sub" in value:
            text = value["Fn::Sub"]
            for name, resolved in (("AWS::AccountId", ACCOUNT), ("AWS::Region", REGION),
                                   ("AWS::Partition", "aws"), ("AWS::URLSuffix", "amazonaws.com")):
                text = text.replace("${" + name + "}", resolved)
            return text
        if "Fn::GetAtt" in value:
            # Attributes of resources in another stack are looked up; those
            # within the same template are left for its CloudFormation.
            return (attributes or {}).get(tuple(value["Fn::GetAtt"]), value)
        if "Ref" in value and value["Ref"].startswith("AWS::"):
            return {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}[value["Ref"]]
        return {k: self.resolve(v, attributes, exports) for k, v in value.items()}

    def expected_job(self, assembly: pathlib.Path) -> tuple[str, dict[str, Any]]:
        """The job name and request the handler will make, from the template's properties."""
        from stacks.packaging_handler import handler

        template = json.loads(self.serving_template_path(assembly).read_text())
        (resource,) = [r for r in template["Resources"].values() if r["Type"] == "Custom::TfHubPackagingJob"]
        properties = self.resolve(resource["Properties"])
        properties = as_cloudformation_sends(properties)
        props = handler.parse_properties(properties)
        name = handler.job_name(props)
        return name, handler.training_job_request(name, props)

    def run_job_as_sagemaker_would(self, request: dict[str, Any]) -> str:
        """Run the packaging job locally with `request`; upload its output; return the prefix."""
        from tools.local_job import run_toolkit, write_layout

        hyperparameters = {k: json.loads(v) for k, v in request["HyperParameters"].items()}
        source_uri = hyperparameters.pop("sagemaker_submit_directory")
        hyperparameters.pop("sagemaker_program")
        base = self.workdir / "job" / request["TrainingJobName"]
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        # The serving stack's assets are published with it; the job's source is
        # the asset file in the cloud assembly, the bytes the deploy uploads.
        asset_hash = _split(source_uri)[1].split(".")[0]
        (source,) = (self.workdir / "assembly").glob(f"asset.{asset_hash}*")
        write_layout(base, hyperparameters, submit_directory=str(source))
        result = run_toolkit(base)
        check(result.returncode == 0, f"the packaging job failed locally:\n{result.stderr[-3000:]}")
        output = f"{request['OutputDataConfig']['S3OutputPath']}{request['TrainingJobName']}/output/model/"
        bucket, prefix = _split(output)
        for path in sorted((base / "model").rglob("*")):
            if path.is_file():
                self.s3.upload_file(str(path), bucket, prefix + path.relative_to(base / "model").as_posix())
        return output

    # --- the lifecycle ------------------------------------------------------

    def deploy(self, hub_handle: str, stage_artifact: bool = True, expect_success: bool = True,
               max_runtime_minutes: int | None = None) -> dict[str, Any]:
        self.write_project(hub_handle, max_runtime_minutes)
        assembly = self.synth()
        removed = self.take_out_sagemaker(assembly)
        self.note(
            "not emulated by ministack: "
            + ", ".join(sorted({r["Type"] for r in removed["Resources"].values()}))
            + " (deployed to moto's CloudFormation instead)"
        )
        # The storage stack first: the job's request names its bucket and role.
        self.cdk("deploy", "--app", str(assembly), "Dev/Storage", "--require-approval", "never")
        self.tag_buckets_as_cloudformation_would(assembly)
        name, request = self.expected_job(assembly)
        artifact = None
        if stage_artifact:
            artifact = self.run_job_as_sagemaker_would(request)
            self.note(f"moto's training jobs run nothing: ran {name} through the SageMaker training toolkit here")
        result = self.cdk("deploy", "--app", str(assembly), "Dev/Serving", "--require-approval", "never",
                          expect_success=expect_success)
        return {"assembly": assembly, "removed": removed, "job": name, "request": request,
                "artifact": artifact, "result": result}

    def tag_buckets_as_cloudformation_would(self, assembly: pathlib.Path) -> None:
        """ministack's CloudFormation drops AWS::S3::Bucket Tags; CDK's auto-delete
        handler reads its tag on `cdk destroy`. Put the template's tags on."""
        (path,) = assembly.glob("assembly-*/*Storage*.template.json")
        template = json.loads(path.read_text())
        resources = self.cloudformation.describe_stack_resources(StackName=self.storage_stack)["StackResources"]
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::S3::Bucket" and resource["Properties"].get("Tags"):
                self.s3.put_bucket_tagging(
                    Bucket=physical[logical_id], Tagging={"TagSet": resource["Properties"]["Tags"]}
                )
        if not getattr(self, "_tagging_noted", False):
            self._tagging_noted = True
            self.note("ministack's CloudFormation drops bucket Tags: put the template's tags on the buckets")

    def outputs(self, stack: str) -> dict[str, str]:
        (description,) = self.cloudformation.describe_stacks(StackName=stack)["Stacks"]
        return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}

    def physical_id(self, stack: str, resource_type: str) -> str:
        resources = self.cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
        (resource,) = [r for r in resources if r["ResourceType"] == resource_type]
        return resource["PhysicalResourceId"]

    def deploy_sagemaker_resources(self, removed: dict[str, Any]) -> dict[str, str]:
        """The Model, EndpointConfig and Endpoint, references resolved, on moto's CloudFormation."""
        # The serving stack's outputs carry the custom resource's attributes.
        outputs = self.outputs(self.serving_stack)
        attributes = {}
        for key, output in _deployed_outputs(self.workdir / "assembly").items():
            value = output["Value"]
            if isinstance(value, dict) and "Fn::GetAtt" in value and key in outputs:
                attributes[tuple(value["Fn::GetAtt"])] = outputs[key]
        resources = self.resolve(removed["Resources"], attributes)
        body = json.dumps({"Resources": resources})
        stacks = self.moto_cloudformation.list_stacks(StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"])
        if any(s["StackName"] == self.sagemaker_stack for s in stacks["StackSummaries"]):
            self.moto_cloudformation.update_stack(StackName=self.sagemaker_stack, TemplateBody=body)
        else:
            self.moto_cloudformation.create_stack(StackName=self.sagemaker_stack, TemplateBody=body)
        resources = self.moto_cloudformation.describe_stack_resources(StackName=self.sagemaker_stack)
        # moto gives ARNs as physical ids; SageMaker's APIs take the name after the '/'.
        return {r["ResourceType"]: r["PhysicalResourceId"].rsplit("/", 1)[-1] for r in resources["StackResources"]}

    def jobs(self) -> list[str]:
        return sorted(j["TrainingJobName"] for j in self.sagemaker.list_training_jobs()["TrainingJobSummaries"])

    def run(self) -> list[str]:
        self.out("bootstrap")
        self.project.mkdir(parents=True, exist_ok=True)
        self.write_project(f"{self.hub_url}/v1")
        self.cdk("bootstrap", f"aws://{ACCOUNT}/{REGION}")
        self.verified("bootstrap", "cdk bootstrap created the CDKToolkit stack")

        self.out("deploy")
        first = self.deploy(f"{self.hub_url}/v1")
        self.check_first_deploy(first)

        self.out("update: a new hub handle")
        second = self.deploy(f"{self.hub_url}/v2")
        self.check_new_handle(first, second)

        self.out("update: only the job's runtime limit, which does not shape the artifact")
        updates_before = self.custom_resource_updates()
        third = self.deploy(f"{self.hub_url}/v2", stage_artifact=False, max_runtime_minutes=25)
        self.check_no_change(second, third, updates_before)

        self.out("update that fails: the job writes no artifact")
        fourth = self.deploy(f"{self.hub_url}/v3", stage_artifact=False, expect_success=False)
        self.check_failed_update(second, fourth)

        self.out("destroy")
        self.destroy()
        return self.steps

    def check_first_deploy(self, deployed: dict[str, Any]) -> None:
        name, request = deployed["job"], deployed["request"]
        check(self.jobs() == [name], f"expected one training job {name}, moto has {self.jobs()}")
        job = self.sagemaker.describe_training_job(TrainingJobName=name)
        for field in ("RoleArn", "HyperParameters", "InputDataConfig", "OutputDataConfig",
                      "ResourceConfig", "StoppingCondition"):
            check(job[field] == request[field], f"{field} of {name}: {job[field]} != {request[field]}")
        check(job["AlgorithmSpecification"]["TrainingImage"] == request["AlgorithmSpecification"]["TrainingImage"],
              "training image differs from the request")
        self.verified("training job", f"training job {name} created with the expected request")
        outputs = self.outputs(self.serving_stack)
        check(outputs["ArtifactLocation"] == deployed["artifact"],
              f"ArtifactLocation {outputs['ArtifactLocation']} != {deployed['artifact']}")
        manifest = self._manifest(deployed["artifact"])
        check(outputs["TreeDigest"] == manifest["tree_digest"], "TreeDigest output differs from the manifest")
        self.verified("artifact", f"artifact location and tree digest returned: {outputs['ArtifactLocation']}")
        check(self.physical_id(self.serving_stack, "Custom::TfHubPackagingJob") == name,
              "the custom resource's physical id is not the job name")
        created = self.deploy_sagemaker_resources(deployed["removed"])
        endpoint = self.sagemaker.describe_endpoint(EndpointName=created["AWS::SageMaker::Endpoint"])
        model = self.sagemaker.describe_model(ModelName=created["AWS::SageMaker::Model"])
        check(model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]["S3Uri"] == deployed["artifact"],
              "the Model does not serve the packaged artifact")
        (template_endpoint,) = [r for r in deployed["removed"]["Resources"].values()
                                if r["Type"] == "AWS::SageMaker::Endpoint"]
        check(template_endpoint["Properties"]["EndpointName"] == f"{self.project_name}-{STAGE}",
              "the template does not name the endpoint after project and stage")
        self.note("moto's CloudFormation names SageMaker resources itself and ignores EndpointName; "
                  "the stable name is checked in the template")
        self.verified("endpoint", f"Model, EndpointConfig and Endpoint created on moto ({endpoint['EndpointName']}), "
                      "serving the packaged artifact")
        self.first_resources = created

    def check_new_handle(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        check(after["job"] != before["job"], "a new handle did not change the job name")
        check(self.jobs() == sorted([before["job"], after["job"]]), f"expected two jobs, moto has {self.jobs()}")
        check(self.physical_id(self.serving_stack, "Custom::TfHubPackagingJob") == after["job"],
              "the custom resource kept its old physical id")
        check(self.outputs(self.serving_stack)["ArtifactLocation"] == after["artifact"], "artifact not updated")
        self.verified("new job", f"new handle: new job {after['job']}, new physical id, new artifact")
        created = self.deploy_sagemaker_resources(after["removed"])
        old = self.first_resources
        check(created["AWS::SageMaker::Model"] != old["AWS::SageMaker::Model"], "the Model was not replaced")
        model = self.sagemaker.describe_model(ModelName=created["AWS::SageMaker::Model"])
        check(model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]["S3Uri"] == after["artifact"],
              "the new Model does not serve the new artifact")
        check(created["AWS::SageMaker::Endpoint"] == old["AWS::SageMaker::Endpoint"], "the Endpoint was replaced")
        self.verified("replace", "new artifact: the Model was replaced by one serving it; the Endpoint kept its identity")
        self.note("moto's CloudFormation does not re-point the EndpointConfig at the new Model; that "
                  "CloudFormation replaces the EndpointConfig and updates the Endpoint in place is "
                  "covered by the template tests, not here")

    def custom_resource_updates(self) -> int:
        events = self.cloudformation.describe_stack_events(StackName=self.serving_stack)["StackEvents"]
        return sum(1 for e in events if e["ResourceType"] == "Custom::TfHubPackagingJob"
                   and e["ResourceStatus"] == "UPDATE_COMPLETE")

    def check_no_change(self, before: dict[str, Any], after: dict[str, Any], updates_before: int) -> None:
        check(after["job"] == before["job"], "a runtime-only change computed another job name")
        check(self.custom_resource_updates() > updates_before,
              "CloudFormation sent the custom resource no update to handle")
        check(len(self.jobs()) == 2, f"a runtime-only change started a job: {self.jobs()}")
        check(self.physical_id(self.serving_stack, "Custom::TfHubPackagingJob") == before["job"],
              "the custom resource changed its physical id")
        self.verified("no job", "an update of the job's runtime limit reached the handler, which kept "
                      "the job and its physical id and started no job")

    def check_failed_update(self, serving: dict[str, Any], failed: dict[str, Any]) -> None:
        check(failed["result"].returncode != 0, "the deploy without an artifact succeeded")
        events = self.cloudformation.describe_stack_events(StackName=self.serving_stack)["StackEvents"]
        reasons = [e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"].endswith("_FAILED")]
        check(any("manifest.json cannot be read" in r for r in reasons),
              f"the failure reason is not in the stack events: {reasons[:3]}")
        (stack,) = self.cloudformation.describe_stacks(StackName=self.serving_stack)["Stacks"]
        check(stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", f"stack is {stack['StackStatus']}")
        check(self.outputs(self.serving_stack)["ArtifactLocation"] == serving["artifact"],
              "after the rollback the stack no longer points at the previous artifact")
        check(self.physical_id(self.serving_stack, "Custom::TfHubPackagingJob") == serving["job"],
              "after the rollback the custom resource is not the previous job")
        self.verified("rollback", "a job without an artifact fails the update with its reason in the stack "
                      "events; the rollback leaves the previous artifact serving")

    def destroy(self) -> None:
        self.cdk("destroy", "--app", str(self.workdir / "assembly"), "**", "--force")
        live = [s["StackName"] for s in self.cloudformation.list_stacks()["StackSummaries"]
                if s["StackStatus"] != "DELETE_COMPLETE" and s["StackName"] != "CDKToolkit"]
        check(live == [], f"stacks left after cdk destroy: {live}")
        buckets = [b["Name"] for b in self.s3.list_buckets()["Buckets"] if b["Name"].startswith(self.storage_stack)]
        check(buckets == [], f"buckets left: {buckets}")
        functions = [f["FunctionName"] for f in self.lambda_.list_functions()["Functions"]
                     if f["FunctionName"].startswith((self.storage_stack, self.serving_stack))]
        check(functions == [], f"functions left: {functions}")
        self.verified("destroy", "cdk destroy removed both stacks, the emptied buckets and every function")
        self.moto_cloudformation.delete_stack(StackName=self.sagemaker_stack)
        endpoints = self.sagemaker.list_endpoints()["Endpoints"]
        models = self.sagemaker.list_models()["Models"]
        check(endpoints == [] and models == [], f"left on moto: {endpoints} {models}")
        self.note("the SageMaker resources' stack on moto was deleted by this tool, not by cdk destroy; "
                  "stopping a running job on delete is covered by the handler tests (moto's jobs never run)")

    def _manifest(self, artifact: str) -> dict[str, Any]:
        bucket, prefix = _split(artifact)
        return json.loads(self.s3.get_object(Bucket=bucket, Key=f"{prefix}manifest.json")["Body"].read())


def _deployed_outputs(assembly: pathlib.Path) -> dict[str, Any]:
    """The outputs of the serving template as deployed to ministack."""
    (path,) = assembly.glob("assembly-*/*Serving*.template.json")
    return json.loads(path.read_text()).get("Outputs", {})


def as_cloudformation_sends(value: Any) -> Any:
    """CloudFormation passes every scalar property to a custom resource as a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return {k: as_cloudformation_sends(v) for k, v in value.items()}
    return value


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def rehearse(out: Callable[[str], None] = print) -> list[str]:
    from tools.demo_model import compressed_archive, save_text_model
    from tools.hub_server import HubServer

    with tempfile.TemporaryDirectory(prefix="rehearsal-") as work:
        workdir = pathlib.Path(work)
        archive = compressed_archive(save_text_model(str(workdir / "demo" / "model")))
        with HubServer() as hub, emulators(workdir) as env:
            for version in ("v1", "v2", "v3"):
                hub.routes[f"/{version}"] = (200, archive)
            out(f"emulators: ministack {env['AWS_ENDPOINT_URL']}, moto {env['MOTO_URL']}; hub {hub.url}")
            return Rehearsal(workdir, env, hub.url, out).run()


def main() -> int:
    # A CI timeout or Ctrl-C still runs the `finally` that stops the emulators.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        steps = rehearse()
    except RehearsalFailed as failure:
        print(f"REHEARSAL FAILED: {failure}")
        return 1
    print(f"rehearsal passed: {len(steps)} checks ({', '.join(steps)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
