"""The rehearsal's steps on dev: deploy, follow, update, a failed update, the runtime
limit, instances and back, destroy, and what the strict SageMaker saw."""

from __future__ import annotations

import json
from typing import Any

from rehearsal.account import PACKAGING_TYPE
from rehearsal.steps import NAMES, STAGES, Steps, check
from stacks.stage.names import ServingOutputs


class DevSteps(Steps):
    def deploys_dev(self) -> None:
        finished = self.user.run("make", "deploy", "STAGE=dev")
        stacks = self.account.stacks()
        dev = set(STAGES["dev"])
        check(set(stacks) == dev | {"CDKToolkit"}, f"make deploy STAGE=dev left these stacks: {stacks}")
        check(all(stacks[s] == "CREATE_COMPLETE" for s in dev), f"stack states: {stacks}")
        check(all(f"✅  {s}" in finished.output for s in dev), "the CLI did not report both dev stacks deployed")
        progress = [line for line in finished.output.splitlines() if line.startswith("progress [")]
        check(
            any(" packaging job " in line for line in progress)
            and any(line.endswith("endpoint tfhub-serving-dev: InService") for line in progress),
            f"make deploy showed no progress of the job and the endpoint: {progress[:10]}",
        )
        self.verified(
            "deploy",
            "make deploy STAGE=dev selected and deployed exactly the dev stage's two stacks, showing the "
            f"packaging job's and the endpoint's progress as it went ({len(progress)} lines)",
        )

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
            outputs[ServingOutputs.TREE_DIGEST]
            == self.account.manifest(outputs[ServingOutputs.ARTIFACT_LOCATION])["tree_digest"],
            "TreeDigest differs from the artifact's manifest",
        )
        self.verified(
            "artifact", f"the job ran; ArtifactLocation {outputs['ArtifactLocation']} and its TreeDigest are the job's"
        )

        serving = self.account.serving(NAMES["dev"].endpoint)
        check(serving["endpoint"]["EndpointStatus"] == "InService", f"endpoint {serving['endpoint']['EndpointStatus']}")
        check(
            serving["model"]["PrimaryContainer"].get("ModelDataUrl") == outputs[ServingOutputs.ARTIFACT_LOCATION]
            and outputs[ServingOutputs.ARTIFACT_LOCATION].endswith("/output/model.tar.gz"),
            f"the serverless Model serves {serving['data']}, not the job's model.tar.gz",
        )
        check("ServerlessConfig" in serving["variant"], f"dev's variant: {serving['variant']}")
        self.verified(
            "endpoint",
            "CloudFormation created Model, EndpointConfig and Endpoint "
            f"{NAMES['dev'].endpoint}: serverless, serving the job's model.tar.gz through ModelDataUrl",
        )
        self.deployed: dict[str, dict[str, Any]] = {"dev": {"job": name, "outputs": outputs, "serving": serving}}
        self.digests = {"v1": outputs[ServingOutputs.TREE_DIGEST]}

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
        screen = self.user.run("make", "status", "STAGE=dev")
        check(
            "endpoint: InService" in screen.output and self.digests["v1"] in screen.output,
            f"make status STAGE=dev does not show dev in service with its digest:\n{screen.output[-1500:]}",
        )
        report = json.loads(self.user.run("make", "-s", "status", "STAGE=dev", "JSON=1").output)
        check(report["digest"] == self.digests["v1"], f"make status JSON=1 reports {report.get('digest')}")
        self.verified(
            "follow and call",
            "make logs showed the job's own lines; make digest printed the "
            "digest dev serves; make smoke STAGE=dev got its model's answer; make status STAGE=dev "
            "showed it in service with that digest, and JSON=1 the same",
        )
        self.note(
            "the rehearsal's SageMaker answers an endpoint with its artifact loaded in TensorFlow "
            "(TF Serving's REST format), not with the TF Serving container"
        )

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
        serving = self.account.serving(NAMES["dev"].endpoint)
        check(outputs[ServingOutputs.TREE_DIGEST] != self.digests["v1"], "the new model has the old digest")
        check(
            serving["data"]
            == outputs[ServingOutputs.ARTIFACT_LOCATION]
            != before["outputs"][ServingOutputs.ARTIFACT_LOCATION],
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
            f"old ones deleted, endpoint {NAMES['dev'].endpoint} updated in place (one UpdateEndpoint)",
        )
        self.deployed["dev"] = {"job": name, "outputs": outputs, "serving": serving}
        self.digests["v2"] = outputs[ServingOutputs.TREE_DIGEST]

    def custom_resource_updates(self) -> int:
        return sum(
            1
            for e in self.account.events(STAGES["dev"][1])
            if e["ResourceType"] == PACKAGING_TYPE and e["ResourceStatus"] == "UPDATE_COMPLETE"
        )

    def runtime_limit_starts_no_job(self) -> None:
        updates, jobs = self.custom_resource_updates(), self.account.jobs()
        self.user.edit_config(lambda stages: stages["dev"]["packaging"].update(max_runtime_minutes=25))
        self.user.run("make", "deploy", "STAGE=dev", "APPROVAL=never")  # as CI's dev job runs it
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
            self.account.serving(NAMES["dev"].endpoint)["data"] == current["outputs"][ServingOutputs.ARTIFACT_LOCATION],
            "after the rollback the endpoint no longer serves the previous artifact",
        )
        self.verified(
            "rollback",
            "a job that fails (the hub answers 404) fails make deploy with the job's reason "
            "in the stack events; the rollback leaves the previous artifact serving",
        )
        self.user.edit_config(lambda stages: stages["dev"]["model"].update(hub_handle=f"{self.hub_url}/v2"))

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
        serving = self.account.serving(NAMES["dev"].endpoint)
        source = serving["model"]["PrimaryContainer"].get("ModelDataSource", {}).get("S3DataSource", {})
        check(
            outputs[ServingOutputs.ARTIFACT_LOCATION].endswith("/output/model/")
            and source.get("S3Uri") == outputs[ServingOutputs.ARTIFACT_LOCATION],
            f"dev on instances serves {serving['data']}, not the job's uncompressed prefix",
        )
        check(
            self.account.manifest(outputs[ServingOutputs.ARTIFACT_LOCATION])["tree_digest"]
            == outputs[ServingOutputs.TREE_DIGEST],
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
        check(
            refused.returncode != 0
            and "Not deploying stage dev" in refused.output
            and "instances-to-serverless" in refused.output,
            f"make deploy did not refuse switching dev back to serverless in place:\n{refused.output[-1500:]}",
        )
        check(
            self.account.serving(NAMES["dev"].endpoint)["variant"].get("InstanceType") == "ml.m5.large",
            "after the refused update dev no longer serves on instances",
        )
        # The plain CLI has no such check: the strict SageMaker in front of the
        # emulators refuses the update, as SageMaker would, and CloudFormation rolls back.
        refused = self.user.run("npx", "cdk", "deploy", "--all", "-c", "stage=dev", expect_success=False)
        reasons = " ".join(self.account.failure_reasons(STAGES["dev"][1]))
        check(
            refused.returncode != 0 and "instances-to-serverless" in reasons,
            f"npx cdk deploy of dev back to serverless in place was not refused by the rule: {reasons[:500]}",
        )
        check(
            self.account.serving(NAMES["dev"].endpoint)["variant"].get("InstanceType") == "ml.m5.large",
            "after the refused update dev no longer serves on instances",
        )
        self.verified(
            "kind change",
            "switching dev back to serverless in place: make deploy refuses it before anything deploys "
            "(delivery/preflight.py, rule instances-to-serverless); npx cdk deploy --all -c stage=dev is "
            "refused by SageMaker's rule and rolled back: dev still serves on instances",
        )
        self.user.run("npx", "cdk", "destroy", "-c", "stage=dev", STAGES["dev"][1])
        self.user.run("make", "deploy", "STAGE=dev")
        serving = self.account.serving(NAMES["dev"].endpoint)
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
