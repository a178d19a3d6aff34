"""`make rehearse`: the README's commands, verbatim, on emulators; and every command
the README gives is run by some test, or says here where and why not."""

from __future__ import annotations

import re

from rehearsal.scenario import rehearse
from tests.conftest import ROOT

# README commands run by other tests, or not runnable as written, and why.
ELSEWHERE = {
    "make synth": "tests/test_makefile.py runs it",
    "make test": ".ci/run runs it",
    "make rehearse": "this test runs its main, rehearsal.scenario.rehearse()",
    "make local": "tests/packaging_job/test_local_job.py runs it",
    "make local HANDLE=https://tfhub.dev/google/universal-sentence-encoder/4 SAMPLE='[\"hello world\"]'": "needs the internet; a loopback hub serves hub's format in tests/packaging_job",
    "make local HANDLE=/path/to/saved_model_dir": "a placeholder; tests/packaging_job/test_local_job.py runs local handles",
    "make local SIGNATURE=scale SAMPLE='[[1, 2]]' MODEL_NAME=numbers OUT=/tmp/numbers": "tests/packaging_job/test_local_job.py runs it with OUT in its temporary folder",
    "make digest STAGE=dev DEBUG=1": "tests/tools/test_cli.py runs it",
    "make promote FROM=dev TO=staging [SOURCE_ROLE_ARN=arn:...] [SOURCE_REGION=...] [DIGEST=sha256] [ASSEMBLY=dir]": "the rehearsal runs it without the optional variables; tests/delivery/test_promote.py and tests/delivery/test_workflow.py "
    "cover them",
    "make assembly STAGE=staging DIGEST=sha256": "tests/delivery/test_assembly.py runs its tool with a digest",
    "export AWS_PROFILE=tfhub-prod-admin": "sets the shell up for the commands after it",
    "export AWS_PROFILE=tfhub-dev-admin AWS_REGION=eu-west-1": "sets the shell up for the commands after it",
    "export AWS_PROFILE=tfhub-staging-admin": "sets the shell up for the commands after it",
    "aws iam create-policy --policy-name tfhub-serving-cfn-exec --policy-document file://cfn-exec-policy.json": "the AWS CLI is not installed here, and it needs a real account",
    "npx cdk bootstrap aws://333333333333/eu-west-1 --cloudformation-execution-policies "
    "arn:aws:iam::333333333333:policy/tfhub-serving-cfn-exec": "needs a real account (IAM); the rehearsal runs a plain bootstrap",
    'npx cdk deploy --app ".venv/bin/python -m account_setup.app" -o cdk.out/ci-access-dev -c stage=dev '
    "-c github_repo=OWNER/REPO": "needs a real account; tests/account_setup/test_stack.py synthesizes each stage's "
    "stack through the app, and the CLI's synth of it",
    'npx cdk deploy --app ".venv/bin/python -m account_setup.app" -o cdk.out/ci-access-staging '
    "-c stage=staging -c github_repo=OWNER/REPO -c source_account=111111111111": "needs a real account; tests/account_setup/test_stack.py synthesizes it",
    'npx cdk deploy --app ".venv/bin/python -m account_setup.app" -o cdk.out/ci-access-prod -c stage=prod '
    "-c github_repo=OWNER/REPO": "needs a real account; tests/account_setup/test_stack.py synthesizes it",
    "aws cloudformation describe-stacks --stack-name tfhub-serving-dev-ci-access --query "
    '"Stacks[0].Outputs" --output table': "the AWS CLI is not installed here",
    "AWS_PROFILE=tfhub-staging-admin npx cdk deploy -c stage=staging tfhub-serving-staging-storage": "the rehearsal deploys staging's storage stack by name (without the profile)",
    "AWS_PROFILE=tfhub-prod-admin npx cdk deploy -c stage=prod tfhub-serving-prod-storage": "the rehearsal runs it "
    "without the profile, before make destroy STAGE=prod",
    "make promote TO=prod RECORD=promotions/<file>.json": "the rehearsal rolls staging back (RECORD=previous); "
    "tests/delivery/test_rollback.py rolls back to a named record",
    "make promote TO=prod RECORD=previous": "the rehearsal runs it for staging (prod is not deployable here)",
    "make promote TO=prod RECORD=last-verified": "the rehearsal runs it for staging (prod is not deployable here)",
    "make promote TO=<stage> RECORD=last-verified": "the rehearsal runs it for staging; "
    "tests/delivery/test_workflow.py checks that CI's rollback steps run it",
    "npx cdk bootstrap aws://ACCOUNT/REGION": "the rehearsal runs it with the emulators' account and region",
    "npx cdk diff -c stage=prod": "make diff's recipe, which the rehearsal runs",
    "npx cdk destroy --all -c stage=dev": "make destroy's recipe, which the rehearsal runs",
    "npx cdk list -c stage=dev": "tests/test_app.py runs cdk list",
    "aws sagemaker-runtime invoke-endpoint --region us-east-1 --endpoint-name tfhub-serving-dev "
    '--content-type application/json --cli-binary-format raw-in-base64-out --body \'{"instances": '
    '["hello world"]}\' /dev/stdout': "the AWS CLI is not installed here; make smoke sends the same request",
}


def readme_commands() -> set[str]:
    """The README's runnable commands: the lines of its sh blocks, and code spans of
    `make`/`npx cdk` with arguments."""
    text = (ROOT / "README.md").read_text()
    commands = set()
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            command = " ".join(line.split("#")[0].split())
            if command:
                commands.add(command)
    for span in re.findall(r"`((?:make|npx cdk) [^`]*)`", text):
        command = " ".join(span.split())
        if "=" in command or command.startswith("npx cdk"):
            commands.add(command)
    return {c for c in commands if not c.endswith(("STAGE=...", "-c stage=..."))}


def test_rehearsal_runs_the_readme_commands_and_checks_what_each_did():
    lines: list[str] = []
    steps, ran = rehearse(out=lines.append)
    assert steps == [
        "unknown stage",
        "bootstrap",
        "deploy",
        "training job",
        "artifact",
        "endpoint",
        "follow and call",
        "pinned staging",
        "promote v1",
        "diff",
        "update",
        "no job",
        "rollback",
        "promote v2",
        "promote back",
        "restore last verified",
        "prod diff",
        "prod destroy refused",
        "destroy staging",
        "instances",
        "kind change",
        "serverless again",
        "destroy dev",
        "strict",
    ]
    missing = {command for command in readme_commands() if command not in ran and command not in ELSEWHERE}
    assert missing == set(), "README commands no test runs"
    # What the emulators cannot do is said, never reported as verified.
    notes = [line for line in lines if line.startswith("  !")]
    assert any("ministack's CloudFormation drops bucket Tags" in note for note in notes)


def test_every_exception_is_still_a_readme_command():
    assert set(ELSEWHERE) <= readme_commands()
