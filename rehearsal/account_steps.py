"""The rehearsal's account-wide steps: an unknown stage refused, the bootstrap, a
stage destroyed with nothing left, and every SageMaker request checked first."""

from __future__ import annotations

from rehearsal.emulators import ACCOUNT, REGION
from rehearsal.steps import NAMES, STAGES, Steps, check


class AccountSteps(Steps):
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
        check(NAMES[stage].endpoint not in endpoints, f"endpoint left: {endpoints}")
        self.verified(
            f"destroy {stage}",
            f"make destroy STAGE={stage} removed both stacks, the emptied buckets "
            "and the SageMaker resources; its leftover check passed",
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
