"""`make rehearse`: the README's commands, exactly as written, on emulators.

A user (`user.py`) runs, in a copy of the project, the commands the README
gives: bootstrap, deploy, logs, digest, smoke, diff, updates (one that fails),
a pinned stage's first deploy, promotions, a rollback, a stage switched to
instances, and destroy. After each command the emulated account
(`account.py`) is inspected for what the command should have done. What
differs from a real account is printed with `!`, never as `✓`, and a failed
check names the step it belongs to.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from rehearsal.account import PACKAGING_TYPE, Account
from rehearsal.emulators import ACCOUNT, REGION, emulators
from rehearsal.user import User, copy_project

PROJECT = "tfhub-serving"
STAGES = {stage: (f"{PROJECT}-{stage}-storage", f"{PROJECT}-{stage}-serving") for stage in ("dev", "staging", "prod")}
# staging's pinned_artifact in cdk.json, where its first deploy looks.
STAGING_PIN = "artifacts/universal-sentence-encoder/4/model.tar.gz"


class RehearsalFailed(AssertionError):
    """A check did not hold; the message says which step and what was seen."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RehearsalFailed(message)


class Rehearsal:
    """One run of the scenario; `steps` names what was verified, in order."""

    def __init__(self, aws, workdir: pathlib.Path, hub_url: str, out: Callable[[str], None] = print) -> None:
        self.aws, self.hub_url, self.out = aws, hub_url, out
        self.user = User(workdir, aws.user_env, out)
        self.account = Account(aws)
        self.steps: list[str] = []

    def verified(self, step: str, detail: str) -> None:
        self.steps.append(step)
        self.out(f"  ✓ {detail}")

    def note(self, text: str) -> None:
        self.out(f"  ! {text}")

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        try:
            yield
        except RehearsalFailed as failure:
            raise RehearsalFailed(f"{name}: {failure}") from failure
        except Exception as error:  # an inspection that could not even run
            raise RehearsalFailed(f"{name}: {type(error).__name__}: {error}") from error

    # --- the scenario --------------------------------------------------------

    def run(self) -> list[str]:
        copy_project(self.user.project)
        self.user.edit_config(self.point_at_emulators)
        self.note(
            "the copy's cdk.json: dev packages demo models from a loopback hub; staging's and prod's "
            f"account and region are the emulators' ({ACCOUNT}, {REGION})"
        )
        check(self.user.region == REGION, f"dev's region would be {self.user.region}, not the emulators' {REGION}")
        for name, action in (
            ("unknown stage", self.refuses_an_unknown_stage),
            ("bootstrap", self.bootstraps),
            ("deploy dev", self.deploys_dev),
            ("follow dev", self.follows_and_calls_dev),
            ("staging's first deploy", self.deploys_pinned_staging),
            ("promote v1", lambda: self.promotes("v1")),
            ("update dev", self.diff_then_update),
            ("runtime limit", self.runtime_limit_starts_no_job),
            ("failed update", self.failed_update_rolls_back),
            ("promote v2", lambda: self.promotes("v2")),
            ("roll back", self.rolls_back),
            ("prod diff", self.diffs_prod),
            ("destroy staging", lambda: self.destroys("staging")),
            ("dev on instances", self.dev_on_instances),
            ("destroy dev", lambda: self.destroys("dev")),
            ("strict", self.strict_sagemaker_saw_everything),
        ):
            with self.step(name):
                action()
        return self.steps

    def point_at_emulators(self, stages: dict[str, Any]) -> None:
        stages["dev"]["model"]["hub_handle"] = f"{self.hub_url}/v1"
        for stage in ("staging", "prod"):
            stages[stage]["account"], stages[stage]["region"] = ACCOUNT, REGION

    def refuses_an_unknown_stage(self) -> None:
        finished = self.user.run("make", "deploy", "STAGE=qa", expect_success=False)
        line = "Configuration error: stage: 'qa' is not declared; allowed: dev, prod, staging"
        check(
            finished.returncode != 0 and line in finished.output.splitlines(),
            f"make deploy STAGE=qa did not fail naming the stage:\n{finished.output[-2000:]}",
        )
        check("Traceback" not in finished.output, "make deploy STAGE=qa printed a traceback")
        self.verified("unknown stage", "make deploy STAGE=qa fails on its configuration line, no traceback")

    def bootstraps(self) -> None:
        self.user.run("npx", "cdk", "bootstrap", f"aws://{ACCOUNT}/{REGION}")
        check("CDKToolkit" in self.account.stacks(), "no CDKToolkit stack")
        self.verified("bootstrap", "npx cdk bootstrap created the CDKToolkit stack")

    def deploys_dev(self) -> None:
        finished = self.user.run("make", "deploy", "STAGE=dev")
        stacks = self.account.stacks()
        dev = set(STAGES["dev"])
        check(set(stacks) == dev | {"CDKToolkit"}, f"make deploy STAGE=dev left these stacks: {stacks}")
        check(all(stacks[s] == "CREATE_COMPLETE" for s in dev), f"stack states: {stacks}")
        check(all(f"✅  {s}" in finished.output for s in dev), "the CLI did not report both dev stacks deployed")
        self.verified("deploy", "make deploy STAGE=dev selected and deployed exactly the dev stage's two stacks")

        name, request = self.account.expected_job(STAGES["dev"][1])
        check(self.account.jobs() == [name], f"expected one training job {name}, SageMaker has {self.account.jobs()}")
        sent = self.aws.sagemaker.requests[name]
        for key in (
            "RoleArn",
            "HyperParameters",
            "InputDataConfig",
            "OutputDataConfig",
            "ResourceConfig",
            "StoppingCondition",
            "AlgorithmSpecification",
            "Tags",
        ):
            check(sent.get(key) == request.get(key), f"{key} of {name}: {sent.get(key)} != {request.get(key)}")
        self.verified("training job", f"the handler started {name} with exactly the request the template implies")

        outputs = self.account.outputs(STAGES["dev"][1])
        check(
            outputs["TreeDigest"] == self.account.manifest(outputs["ArtifactLocation"])["tree_digest"],
            "TreeDigest differs from the artifact's manifest",
        )
        self.verified(
            "artifact", f"the job ran; ArtifactLocation {outputs['ArtifactLocation']} and its TreeDigest are the job's"
        )

        serving = self.account.serving(f"{PROJECT}-dev")
        check(serving["endpoint"]["EndpointStatus"] == "InService", f"endpoint {serving['endpoint']['EndpointStatus']}")
        check(
            serving["model"]["PrimaryContainer"].get("ModelDataUrl") == outputs["ArtifactLocation"]
            and outputs["ArtifactLocation"].endswith("/output/model.tar.gz"),
            f"the serverless Model serves {serving['data']}, not the job's model.tar.gz",
        )
        check("ServerlessConfig" in serving["variant"], f"dev's variant: {serving['variant']}")
        self.verified(
            "endpoint",
            "CloudFormation created Model, EndpointConfig and Endpoint "
            f"{PROJECT}-dev: serverless, serving the job's model.tar.gz through ModelDataUrl",
        )
        self.deployed: dict[str, dict[str, Any]] = {"dev": {"job": name, "outputs": outputs, "serving": serving}}
        self.digests = {"v1": outputs["TreeDigest"]}

    def follows_and_calls_dev(self) -> None:
        current = self.deployed["dev"]
        logs = self.user.run("make", "logs", "STAGE=dev")
        check(
            "[packaging] Packaged" in logs.output and f"{current['job']}: Completed" in logs.output,
            f"make logs did not show the job's lines and its end:\n{logs.output[-2000:]}",
        )
        digest = self.user.run("make", "digest", "STAGE=dev")
        check(
            digest.output.strip().splitlines()[-1] == self.digests["v1"],
            f"make digest printed {digest.output.strip()[-200:]!r}",
        )
        self.smokes("dev")
        self.verified(
            "follow and call",
            "make logs showed the job's own lines; make digest printed the "
            "digest dev serves; make smoke STAGE=dev got its model's answer",
        )
        self.note(
            "the rehearsal's SageMaker answers an endpoint with its artifact loaded in TensorFlow "
            "(TF Serving's REST format), not with the TF Serving container"
        )

    def smokes(self, stage: str) -> None:
        before = self.aws.sagemaker.invocations.get(f"{PROJECT}-{stage}", 0)
        smoke = self.user.run("make", "smoke", f"STAGE={stage}")
        check('"problems": []' in smoke.output, f"make smoke STAGE={stage} found problems:\n{smoke.output[-2000:]}")
        check(
            self.aws.sagemaker.invocations.get(f"{PROJECT}-{stage}", 0) > before,
            f"make smoke STAGE={stage} never reached the endpoint",
        )

    def deploys_pinned_staging(self) -> None:
        """The README's first deploy of a pinned stage: storage, the artifact, then make deploy."""
        self.user.run("npx", "cdk", "deploy", "-c", "stage=staging", STAGES["staging"][0])
        bucket = self.account.export(f"{PROJECT}-staging-bucket-name")
        source_bucket, _, source_key = self.deployed["dev"]["outputs"]["ArtifactLocation"][5:].partition("/")
        self.account.s3.copy_object(
            Bucket=bucket, Key=STAGING_PIN, CopySource={"Bucket": source_bucket, "Key": source_key}
        )
        self.note("the artifact was copied to staging's pinned_artifact key with boto3, as `aws s3 cp` would")
        self.user.run("make", "deploy", "STAGE=staging")
        serving = self.account.serving(f"{PROJECT}-staging")
        check(
            serving["data"] == f"s3://{bucket}/{STAGING_PIN}"
            and serving["variant"].get("InstanceType") == "ml.m5.large",
            f"staging serves {serving['data']} on {serving['variant']}",
        )
        self.smokes("staging")
        self.verified(
            "pinned staging",
            "npx cdk deploy of staging's storage, the artifact copied to its "
            "pinned_artifact key, make deploy STAGE=staging: instances serve the model.tar.gz "
            "(ModelDataUrl); make smoke STAGE=staging got its answer",
        )
        self.deployed["staging"] = {"serving": serving}

    def promotes(self, version: str) -> None:
        finished = self.user.run("make", "promote", "FROM=dev", "TO=staging")
        digest = self.digests[version]
        self.check_staging_serves(digest)
        check(f'"digest": "{digest}"' in finished.output, "make promote did not print its record")
        self.check_promotion_log()
        self.smokes("staging")
        self.verified(
            f"promote {version}",
            f"make promote FROM=dev TO=staging: dev's {version} archive unpacked "
            "into staging's bucket, verified by digest, staging deployed pinned to it on instances "
            "(ModelDataSource); make smoke STAGE=staging got its answer",
        )

    def check_promotion_log(self) -> None:
        """Records are appended, numbered from 1, with no mutable pointer beside them; each
        names the assembly it deployed and the smoke test's passing verdict."""
        bucket = self.account.export(f"{PROJECT}-staging-bucket-name")
        listed = [
            o["Key"] for o in self.account.s3.list_objects_v2(Bucket=bucket, Prefix="promotions/").get("Contents", [])
        ]
        stored = {key for key in listed if key.startswith("promotions/assemblies/")}
        keys = [key for key in listed if key not in stored]
        numbers = [key.removeprefix("promotions/")[:8] for key in keys]
        check(numbers == [f"{n:08d}" for n in range(1, len(keys) + 1)], f"staging's promotion log: {keys}")
        for key in keys:
            record = json.loads(self.account.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            check(
                record["assembly"] and record["assembly"]["key"] in stored,
                f"{key} names no stored assembly: {record.get('assembly')}",
            )
            check(
                record["smoke"]["passed"] and record["smoke"]["checked_values"],
                f"{key}'s smoke test did not pass with values checked: {record['smoke']}",
            )

    def check_staging_serves(self, digest: str) -> None:
        outputs = self.account.outputs(STAGES["staging"][1])
        check(outputs["TreeDigest"] == digest, f"staging reports {outputs['TreeDigest']}, not {digest}")
        check(
            outputs["ArtifactLocation"].endswith(f"/artifacts/promoted/{digest}/model/"),
            f"staging serves {outputs['ArtifactLocation']}",
        )
        serving = self.account.serving(f"{PROJECT}-staging")
        source = serving["model"]["PrimaryContainer"].get("ModelDataSource", {}).get("S3DataSource", {})
        check(
            source.get("S3Uri") == outputs["ArtifactLocation"] and source.get("CompressionType") == "None",
            "staging's Model does not serve the uncompressed copy",
        )
        check(serving["variant"].get("InstanceType") == "ml.m5.large", f"staging's variant: {serving['variant']}")

    def diff_then_update(self) -> None:
        before = self.deployed["dev"]
        unchanged = self.user.run("make", "diff", "STAGE=dev")
        check(
            "Number of stacks with differences: 0" in unchanged.output
            and all(f"Stack {stack}" in unchanged.output for stack in STAGES["dev"]),
            "make diff after the deploy did not compare both dev stacks without differences:\n"
            + unchanged.output[-2000:],
        )
        self.user.edit_config(lambda stages: stages["dev"]["model"].update(hub_handle=f"{self.hub_url}/v2"))
        changed = self.user.run("make", "diff", "STAGE=dev")
        check(
            "Number of stacks with differences: 1" in changed.output and "HubHandle" in changed.output,
            f"make diff after a new hub handle does not report it:\n{changed.output[-3000:]}",
        )
        self.verified(
            "diff", "make diff compares both dev stacks: no difference after a deploy, the new hub handle after an edit"
        )

        endpoint_id = self.account.physical_id(STAGES["dev"][1], "AWS::SageMaker::Endpoint")
        updates = self.aws.sagemaker.checked.get("UpdateEndpoint", 0)
        self.user.run("make", "deploy", "STAGE=dev")
        name, _ = self.account.expected_job(STAGES["dev"][1])
        check(
            name != before["job"] and self.account.jobs() == sorted([before["job"], name]),
            f"a new handle should add one job; SageMaker has {self.account.jobs()}",
        )
        check(
            self.account.physical_id(STAGES["dev"][1], PACKAGING_TYPE) == name,
            "the custom resource kept its old physical id",
        )
        outputs = self.account.outputs(STAGES["dev"][1])
        serving = self.account.serving(f"{PROJECT}-dev")
        check(outputs["TreeDigest"] != self.digests["v1"], "the new model has the old digest")
        check(
            serving["data"] == outputs["ArtifactLocation"] != before["outputs"]["ArtifactLocation"],
            "the endpoint does not serve the new artifact",
        )
        old_model, old_config = (
            before["serving"]["model"]["ModelName"],
            before["serving"]["config"]["EndpointConfigName"],
        )
        check(
            serving["model"]["ModelName"] != old_model and serving["config"]["EndpointConfigName"] != old_config,
            "the Model or the EndpointConfig was not replaced",
        )
        models = [m["ModelName"] for m in self.account.sagemaker.list_models()["Models"]]
        configs = [c["EndpointConfigName"] for c in self.account.sagemaker.list_endpoint_configs()["EndpointConfigs"]]
        check(
            old_model not in models and old_config not in configs, "a replaced Model or EndpointConfig is still there"
        )
        endpoint_events = [
            e["ResourceStatus"]
            for e in self.account.events(STAGES["dev"][1])
            if e["ResourceType"] == "AWS::SageMaker::Endpoint"
        ]
        check(
            self.account.physical_id(STAGES["dev"][1], "AWS::SageMaker::Endpoint") == endpoint_id
            and not any(status.startswith("DELETE") for status in endpoint_events)
            and self.aws.sagemaker.checked.get("UpdateEndpoint", 0) == updates + 1,
            "the Endpoint was not updated in place with one UpdateEndpoint",
        )
        self.verified(
            "update",
            f"new handle: job {name}, a new digest, Model and EndpointConfig replaced and the "
            f"old ones deleted, endpoint {PROJECT}-dev updated in place (one UpdateEndpoint)",
        )
        self.deployed["dev"] = {"job": name, "outputs": outputs, "serving": serving}
        self.digests["v2"] = outputs["TreeDigest"]

    def custom_resource_updates(self) -> int:
        return sum(
            1
            for e in self.account.events(STAGES["dev"][1])
            if e["ResourceType"] == PACKAGING_TYPE and e["ResourceStatus"] == "UPDATE_COMPLETE"
        )

    def runtime_limit_starts_no_job(self) -> None:
        updates, jobs = self.custom_resource_updates(), self.account.jobs()
        self.user.edit_config(lambda stages: stages["dev"]["packaging"].update(max_runtime_minutes=25))
        self.user.run("make", "deploy", "STAGE=dev")
        check(self.custom_resource_updates() > updates, "CloudFormation sent the custom resource no update")
        check(self.account.jobs() == jobs, f"a runtime-limit change started a job: {self.account.jobs()}")
        check(
            self.account.physical_id(STAGES["dev"][1], PACKAGING_TYPE) == self.deployed["dev"]["job"],
            "the custom resource changed its physical id",
        )
        self.verified("no job", "a runtime-limit change reached the handler, which started no job")

    def failed_update_rolls_back(self) -> None:
        current = self.deployed["dev"]
        self.user.edit_config(lambda stages: stages["dev"]["model"].update(hub_handle=f"{self.hub_url}/missing"))
        failed = self.user.run("make", "deploy", "STAGE=dev", expect_success=False)
        check(failed.returncode != 0, "make deploy of a handle that does not exist succeeded")
        reasons = self.account.failure_reasons(STAGES["dev"][1])
        check(
            any("HTTP 404" in reason for reason in reasons),
            f"the job's reason is not in the stack events: {reasons[:3]}",
        )
        check(
            self.account.status(STAGES["dev"][1]) == "UPDATE_ROLLBACK_COMPLETE", "the serving stack did not roll back"
        )
        check(
            self.account.serving(f"{PROJECT}-dev")["data"] == current["outputs"]["ArtifactLocation"],
            "after the rollback the endpoint no longer serves the previous artifact",
        )
        self.verified(
            "rollback",
            "a job that fails (the hub answers 404) fails make deploy with the job's reason "
            "in the stack events; the rollback leaves the previous artifact serving",
        )
        self.user.edit_config(lambda stages: stages["dev"]["model"].update(hub_handle=f"{self.hub_url}/v2"))

    def rolls_back(self) -> None:
        self.user.run("make", "promote", "TO=staging", "RECORD=previous")
        self.check_staging_serves(self.digests["v1"])
        self.check_promotion_log()
        self.smokes("staging")
        self.verified(
            "promote back",
            "make promote TO=staging RECORD=previous: staging verified and serves the "
            "v1 copy again; make smoke STAGE=staging got its answer",
        )

    def diffs_prod(self) -> None:
        diff = self.user.run("make", "diff", "STAGE=prod")
        check(
            all(f"Stack {stack}" in diff.output for stack in STAGES["prod"])
            and "Number of stacks with differences: 2" in diff.output,
            f"make diff STAGE=prod did not compare prod's two (undeployed) stacks:\n{diff.output[-2000:]}",
        )
        self.verified("prod diff", "make diff STAGE=prod shows both prod stacks, every resource new")
        self.note(
            "prod is not deployed here: ministack has no Application Auto Scaling, which prod's "
            "autoscaling needs; make destroy STAGE=prod's termination protection is covered by the template tests"
        )

    def destroys(self, stage: str) -> None:
        storage, serving = STAGES[stage]
        self.account.tag_buckets_as_cloudformation_would(storage)
        self.note(
            f"ministack's CloudFormation drops bucket Tags: the template's tags are put on {storage}'s "
            "buckets before make destroy, as CloudFormation would have"
        )
        buckets = self.account.buckets(storage)
        finished = self.user.run("make", "destroy", f"STAGE={stage}")
        check(not {storage, serving} & set(self.account.stacks()), f"stacks left: {self.account.stacks()}")
        left = set(buckets) & {b["Name"] for b in self.account.s3.list_buckets()["Buckets"]}
        check(not left, f"buckets left: {left}")
        check(
            f"Nothing of stage {stage} is left in SageMaker" in finished.output,
            f"the leftover check did not pass:\n{finished.output[-2000:]}",
        )
        endpoints = [e["EndpointName"] for e in self.account.sagemaker.list_endpoints()["Endpoints"]]
        check(f"{PROJECT}-{stage}" not in endpoints, f"endpoint left: {endpoints}")
        self.verified(
            f"destroy {stage}",
            f"make destroy STAGE={stage} removed both stacks, the emptied buckets "
            "and the SageMaker resources; its leftover check passed",
        )

    def dev_on_instances(self) -> None:
        """dev switched to instances in place (SageMaker allows it, one way), refused on
        the way back, and serverless again after its serving stack goes."""
        serverless: dict[str, Any] = {}

        def to_instances(stages: dict[str, Any]) -> None:
            serverless.update(stages["dev"]["serving"])
            stages["dev"]["serving"] = {"instances": {"type": "ml.m5.large", "count": 1}}

        self.user.edit_config(to_instances)
        self.user.run("make", "deploy", "STAGE=dev")
        outputs = self.account.outputs(STAGES["dev"][1])
        serving = self.account.serving(f"{PROJECT}-dev")
        source = serving["model"]["PrimaryContainer"].get("ModelDataSource", {}).get("S3DataSource", {})
        check(
            outputs["ArtifactLocation"].endswith("/output/model/")
            and source.get("S3Uri") == outputs["ArtifactLocation"],
            f"dev on instances serves {serving['data']}, not the job's uncompressed prefix",
        )
        check(
            self.account.manifest(outputs["ArtifactLocation"])["tree_digest"] == outputs["TreeDigest"],
            "the uncompressed artifact's manifest does not match TreeDigest",
        )
        check(serving["variant"].get("InstanceType") == "ml.m5.large", f"dev's variant: {serving['variant']}")
        self.smokes("dev")
        self.verified(
            "instances",
            "make deploy STAGE=dev switched to instances updates the endpoint in place: "
            "the job packages uncompressed (CompressionType NONE), served through ModelDataSource; "
            "make smoke STAGE=dev got its answer",
        )

        self.user.edit_config(lambda stages: stages["dev"].update(serving=serverless))
        refused = self.user.run("make", "deploy", "STAGE=dev", expect_success=False)
        reasons = " ".join(self.account.failure_reasons(STAGES["dev"][1]))
        check(
            refused.returncode != 0 and "instances-to-serverless" in reasons,
            f"switching dev back to serverless in place was not refused by the rule: {reasons[:500]}",
        )
        check(
            self.account.serving(f"{PROJECT}-dev")["variant"].get("InstanceType") == "ml.m5.large",
            "after the refused update dev no longer serves on instances",
        )
        self.verified(
            "kind change",
            "switching dev back to serverless in place is refused (rule "
            "instances-to-serverless), as SageMaker refuses it, and rolled back: dev still serves on "
            "instances",
        )
        self.user.run("npx", "cdk", "destroy", "-c", "stage=dev", STAGES["dev"][1])
        self.user.run("make", "deploy", "STAGE=dev")
        serving = self.account.serving(f"{PROJECT}-dev")
        check(
            serving["variant"].get("ServerlessConfig") and serving["data"].endswith("/output/model.tar.gz"),
            f"dev is not serverless again: {serving['variant']}",
        )
        self.smokes("dev")
        self.verified(
            "serverless again",
            "after npx cdk destroy of dev's serving stack, make deploy STAGE=dev "
            "serves serverless again; make smoke STAGE=dev got its answer",
        )

    def strict_sagemaker_saw_everything(self) -> None:
        checked = self.aws.sagemaker.checked
        needed = {"CreateTrainingJob", "CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint"}
        check(needed <= set(checked), f"the rulebook did not see every kind of request: {sorted(checked)}")
        self.verified(
            "strict",
            "every SageMaker request went through the rulebook first: "
            + ", ".join(f"{op} x{checked[op]}" for op in sorted(needed)),
        )


def rehearse(out: Callable[[str], None] = print) -> tuple[list[str], list[str]]:
    """Run the scenario; the steps verified and the commands run, in order."""
    from fixtures.demo_model import compressed_archive, save_text_model
    from fixtures.hub_server import HubServer

    with tempfile.TemporaryDirectory(prefix="rehearsal-") as work:
        workdir = pathlib.Path(work)
        # Two different models: each version of the handle has its own tree digest.
        archives = {
            f"v{seed}": compressed_archive(save_text_model(str(workdir / f"demo{seed}" / "model"), seed))
            for seed in (1, 2)
        }
        with HubServer() as hub, emulators(workdir) as aws:
            for version, archive in archives.items():
                hub.routes[f"/{version}"] = (200, archive)
            out(
                f"emulators: ministack {aws.ministack_url}, SageMaker {aws.sagemaker.url} "
                f"(moto {aws.moto_url}); hub {hub.url}"
            )
            rehearsal = Rehearsal(aws, workdir, hub.url, out)
            try:
                return rehearsal.run(), rehearsal.user.commands
            except RehearsalFailed as failure:
                raise RehearsalFailed(f"{failure}\n(the emulators' logs are kept in {keep_logs(workdir)})") from failure


def keep_logs(workdir: pathlib.Path) -> pathlib.Path:
    """Copy the emulators' logs out of the work folder, which is deleted."""
    kept = pathlib.Path(tempfile.mkdtemp(prefix="rehearsal-logs-"))
    for log in workdir.glob("*.log"):
        shutil.copy(log, kept)
    return kept
