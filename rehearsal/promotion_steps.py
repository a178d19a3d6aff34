"""The rehearsal's steps on staging and prod: a pinned stage's first deploy,
promotions, the promotion log, a rollback, prod's diff and its refused destroy."""

from __future__ import annotations

import json

from delivery import records
from rehearsal.steps import NAMES, STAGES, STAGING_PIN, Steps, check
from stacks.stage.names import ServingOutputs


class PromotionSteps(Steps):
    def deploys_pinned_staging(self) -> None:
        """The README's first deploy of a pinned stage: storage, the artifact, then make deploy."""
        self.user.run("npx", "cdk", "deploy", "-c", "stage=staging", STAGES["staging"][0])
        bucket = self.account.export(NAMES["staging"].bucket_name_export)
        location = self.deployed["dev"]["outputs"][ServingOutputs.ARTIFACT_LOCATION]
        source_bucket, _, source_key = location.removeprefix("s3://").partition("/")
        self.account.s3.copy_object(
            Bucket=bucket, Key=STAGING_PIN, CopySource={"Bucket": source_bucket, "Key": source_key}
        )
        self.note("the artifact was copied to staging's pinned_artifact key with boto3, as `aws s3 cp` would")
        self.user.run("make", "deploy", "STAGE=staging")
        serving = self.account.serving(NAMES["staging"].endpoint)
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
        deploy is logged before it starts, then with the assembly it deployed and the smoke
        test's passing verdict."""
        bucket = self.account.export(NAMES["staging"].bucket_name_export)
        listed = [
            o["Key"] for o in self.account.s3.list_objects_v2(Bucket=bucket, Prefix="promotions/").get("Contents", [])
        ]
        stored = {key for key in listed if key.startswith("promotions/assemblies/")}
        keys = [key for key in listed if key not in stored]
        numbers = [key.removeprefix("promotions/")[:8] for key in keys]
        check(numbers == [f"{n:08d}" for n in range(1, len(keys) + 1)], f"staging's promotion log: {keys}")
        started, finished = set(), set()
        for key in keys:
            record = json.loads(self.account.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            if record.get("deploy") == records.STARTED:
                started.add(key)
                continue
            finished.add(record["started"])
            check(
                record["assembly"] and record["assembly"]["key"] in stored,
                f"{key} names no stored assembly: {record.get('assembly')}",
            )
            check(
                record["smoke"]["passed"] and record["smoke"]["checked_values"],
                f"{key}'s smoke test did not pass with values checked: {record['smoke']}",
            )
        check(started == finished, f"staging's log: deploys started {sorted(started)}, finished {sorted(finished)}")

    def check_staging_serves(self, digest: str) -> None:
        outputs = self.account.outputs(STAGES["staging"][1])
        check(
            outputs[ServingOutputs.TREE_DIGEST] == digest,
            f"staging reports {outputs[ServingOutputs.TREE_DIGEST]}, not {digest}",
        )
        check(
            outputs[ServingOutputs.ARTIFACT_LOCATION].endswith(f"/artifacts/promoted/{digest}/model/"),
            f"staging serves {outputs[ServingOutputs.ARTIFACT_LOCATION]}",
        )
        serving = self.account.serving(NAMES["staging"].endpoint)
        source = serving["model"]["PrimaryContainer"].get("ModelDataSource", {}).get("S3DataSource", {})
        check(
            source.get("S3Uri") == outputs[ServingOutputs.ARTIFACT_LOCATION]
            and source.get("CompressionType") == "None",
            "staging's Model does not serve the uncompressed copy",
        )
        check(serving["variant"].get("InstanceType") == "ml.m5.large", f"staging's variant: {serving['variant']}")

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
        # CI's restore after a failed promotion: the newest verified state, which is
        # what staging serves now, so it stays on v1.
        self.user.run("make", "promote", "TO=staging", "RECORD=last-verified")
        self.check_staging_serves(self.digests["v1"])
        self.check_promotion_log()
        self.verified(
            "restore last verified",
            "make promote TO=staging RECORD=last-verified: staging redeployed and verified on the "
            "state it already served (v1)",
        )

    def diffs_prod(self) -> None:
        diff = self.user.run("make", "diff", "STAGE=prod")
        check(
            all(f"Stack {stack}" in diff.output for stack in STAGES["prod"])
            and "Number of stacks with differences: 2" in diff.output,
            f"make diff STAGE=prod did not compare prod's two (undeployed) stacks:\n{diff.output[-2000:]}",
        )
        self.verified("prod diff", "make diff STAGE=prod shows both prod stacks, every resource new")

    def refuses_to_destroy_prod(self) -> None:
        """The README's prod storage deploy, then `make destroy STAGE=prod` stopped by
        termination protection (DeleteStack refuses a protected stack: "Protect a
        CloudFormation stack from being deleted", CloudFormation User Guide)."""
        storage = STAGES["prod"][0]
        self.user.run("npx", "cdk", "deploy", "-c", "stage=prod", storage)
        (described,) = self.account.cloudformation.describe_stacks(StackName=storage)["Stacks"]
        check(described.get("EnableTerminationProtection") is True, f"{storage} is not termination-protected")
        finished = self.user.run("make", "destroy", "STAGE=prod", expect_success=False)
        check(finished.returncode != 0, f"make destroy STAGE=prod succeeded:\n{finished.output[-2000:]}")
        check(
            "cannot be deleted while TerminationProtection is enabled" in finished.output,
            f"make destroy STAGE=prod did not fail on termination protection:\n{finished.output[-2000:]}",
        )
        check(
            self.account.status(storage) == "CREATE_COMPLETE",
            f"{storage} is {self.account.status(storage)} after the refused destroy",
        )
        self.verified(
            "prod destroy refused",
            f"npx cdk deploy -c stage=prod {storage}, then make destroy STAGE=prod: CloudFormation "
            "refused (termination protection), non-zero exit, the stack still there",
        )
        self.note(
            "prod's serving stack is not deployed here: ministack has no Application Auto Scaling, "
            "which prod's autoscaling needs"
        )
