"""Issue 13's scenarios as whole jobs of the delivery workflow, run by
`workflow_runner.run_job` against a moto server holding dev's and staging's
accounts, with the project's make targets as they are.

The emulation stops where a job reaches SageMaker: dev's `make deploy` and
`make smoke` are stood in for (their state, a serving stack and a passed smoke
test, put in moto by the test), and a promotion's `cdk deploy` fails because moto
holds no CDK bootstrap. What a real deploy does is the rehearsal's
(tests/rehearsal).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping

import pytest

from tests.conftest import ROOT
from tests.delivery.workflow_accounts import (
    ACCOUNTS,
    ARCHIVE_KEY,
    Moto,
    fresh,
    gh_answering,
    recorded_moto,
    serving_in_dev,
    variables,
)
from tests.delivery.workflow_machine import Runner
from tests.delivery.workflow_runner import JobRun, StepRun, jobs, run_job, succeeded, workflow
from tests.delivery.world import upload_archive

pytestmark = pytest.mark.emulated

TESTED = "ab" * 32
PWNED = "pwned-by-dev"
HOSTILE = f"$(touch {PWNED})"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with recorded_moto(tmp_path_factory.mktemp("moto") / "requests.jsonl") as server:
        yield server


@pytest.fixture
def accounts(moto):
    """Every account fresh for each test."""
    fresh(moto)
    return moto


@pytest.fixture(scope="module")
def built(moto, packaged_as_configured, tmp_path_factory) -> tuple[Runner, JobRun]:
    """One run of the workflow: the build job, run once for the packaged model's
    digest (packaged under cdk.json's model name), its assemblies in the run's
    artifact storage for the later jobs.
    prod's assembly is stood in for: no test here deploys prod, and it would
    cost another synth (the assembly tool is tested in test_assembly.py)."""
    runner = Runner(tmp_path_factory.mktemp("run"), aws_endpoint_url=moto.url)
    digest = packaged_as_configured[1]["tree_digest"]
    build = run_job(
        workflow(),
        "build",
        {"dev": succeeded(digest=digest)},
        runner=runner,
        stand_ins={"make assembly STAGE=prod": lambda env: True},
    )
    assert build.result == "success", build.log
    assert (runner.artifacts / "assemblies" / "assembly-staging" / "manifest.json").is_file()
    return runner, build


def no_file_made(*folders: pathlib.Path | None) -> bool:
    return not any((folder / PWNED).exists() for folder in (ROOT, *folders) if folder)


DEV_STEPS = [
    "actions/checkout",
    "actions/setup-python",
    "make deps",
    "aws-actions/configure-aws-credentials",
    "make deploy STAGE=dev APPROVAL=never",
    "make smoke STAGE=dev",
    "artifact",
]


@pytest.mark.parametrize(
    ("reported", "refusal"),
    [
        pytest.param({"TreeDigest": TESTED}, None, id="tested"),
        pytest.param({}, "has no TreeDigest output", id="make-digest-fails"),
        pytest.param({"TreeDigest": HOSTILE}, "gave no tree digest", id="hostile"),
    ],
)
def test_dev_hands_on_only_a_tree_digest_and_a_failed_make_digest_fails_it(accounts, tmp_path, reported, refusal):
    """Scenario 1 (and 2 at its source): the dev job, whole. Its deploy and smoke
    test are stood in for (a serving stack reporting `reported`, and a passed smoke
    test: a served model is beyond moto); `make digest` runs for real. No digest, or
    anything but one, fails the job, and then neither build nor staging runs: no
    empty digest ever reaches a promotion."""
    runner = Runner(tmp_path / "run", aws_endpoint_url=accounts.url)

    def deploy(env: Mapping[str, str]) -> bool:
        serving_in_dev(accounts, reported)
        return True

    dev = run_job(
        workflow(),
        "dev",
        {"test": succeeded(), "synth": succeeded()},
        runner=runner,
        variables=variables("dev"),
        stand_ins={"make deploy STAGE=dev APPROVAL=never": deploy, "make smoke STAGE=dev": lambda env: True},
    )
    assert [s.name for s in dev.steps] == DEV_STEPS
    assert dev.outcomes()[:-1] == [(name, "success") for name in DEV_STEPS[:-1]], dev.log
    assert no_file_made(dev.workspace)
    if refusal is None:
        assert (dev.result, dev.outputs) == ("success", {"digest": TESTED}), dev.log
        return
    assert (dev.result, dev.step("artifact").outcome, dev.outputs) == ("failure", "failure", {"digest": ""})
    assert dev.step("artifact").outputs == {}
    assert refusal in dev.step("artifact").log
    build = run_job(workflow(), "build", {"dev": dev}, runner=runner)
    staging = run_job(workflow(), "staging", {"dev": dev, "build": build}, runner=runner)
    assert (build.result, staging.result, staging.steps) == ("skipped", "skipped", [])


STAGING_STEPS = [
    "actions/checkout",
    "actions/setup-python",
    "make deps",
    "actions/download-artifact",
    "aws-actions/configure-aws-credentials",
    "promote",
    "make promote TO=staging RECORD=last-verified",
    "cancelled",
]


def run_staging(built, moto: Moto, digest: str, stage_variables: dict[str, str]) -> tuple[JobRun, dict[str, int]]:
    """The staging job after dev handed on `digest`; with how many AWS requests
    moto answered by the end of each step."""
    runner, build = built
    answered: dict[str, int] = {}

    def count(step: StepRun) -> None:
        answered[step.name] = moto.requests()

    staging = run_job(
        workflow(),
        "staging",
        {"dev": succeeded(digest=digest), "build": build},
        runner=runner,
        variables=stage_variables,
        after_step=count,
    )
    assert [s.name for s in staging.steps] == STAGING_STEPS
    return staging, answered


@pytest.mark.parametrize("digest", ["", HOSTILE, f"$(shell touch {PWNED})", f"x' ; touch {PWNED} ; '"])
def test_staging_refuses_an_empty_or_hostile_digest_before_any_aws_call(built, accounts, digest):
    """Scenarios 1 and 2 at the next job: dev's output reaches staging through
    `needs` and `env:`, as data: nothing in it runs (make would run a `$(shell ...)`
    on its command line, a shell `$(...)` in a script), it is refused for its form
    before the promotion makes any AWS call, and the job fails."""
    staging, answered = run_staging(built, accounts, digest, variables("staging"))
    assert staging.result == "failure"
    assert staging.outcomes()[:5] == [(name, "success") for name in STAGING_STEPS[:5]], staging.log
    assert staging.step("promote").outcome == "failure"
    assert "is not a tree digest" in staging.step("promote").log
    assert answered["promote"] == answered["aws-actions/configure-aws-credentials"]
    assert no_file_made(staging.workspace)
    assert "Contents" not in accounts.client("staging", "s3").list_objects_v2(Bucket="staging-bucket")


def test_a_promotion_from_dev_without_source_region_stops_before_any_aws_call(built, accounts, packaged_as_configured):
    """Scenario 5: dev's region is its environment's, never staging's. With the
    SOURCE_REGION variable unset (it reaches the job as ""), the promotion says
    what is missing before any AWS call, instead of looking for dev's stack in
    staging's region."""
    digest = packaged_as_configured[1]["tree_digest"]
    serving_in_dev(accounts, {"TreeDigest": digest})
    unset = {k: v for k, v in variables("staging").items() if k != "SOURCE_REGION"}
    staging, answered = run_staging(built, accounts, digest, unset)
    assert staging.result == "failure" and staging.step("promote").outcome == "failure", staging.log
    assert "In CI a promotion from dev needs SOURCE_REGION=<dev's region>" in staging.step("promote").log
    assert answered["promote"] == answered["aws-actions/configure-aws-credentials"]


def test_a_promotion_whose_deploy_fails_is_rolled_back(built, accounts, packaged_as_configured):
    """The staging job, whole, on the happy path up to the deploy: the tested
    digest's artifact is read from dev (its read role, its region), copied into
    staging and verified, the deploy's start recorded, the built assembly checked
    to pin it; then `cdk deploy` fails, as moto holds no CDK bootstrap (where the
    emulation stops). The rollback step runs, and on a stage that served nothing
    before says so plainly; the job fails."""
    digest = packaged_as_configured[1]["tree_digest"]
    # As dev's packaging job leaves it (serverless dev: a model.tar.gz).
    upload_archive(accounts.client("dev", "s3"), "dev-bucket", ARCHIVE_KEY, packaged_as_configured[0])
    serving_in_dev(accounts, {"TreeDigest": digest})
    staging, _ = run_staging(built, accounts, digest, variables("staging"))
    assert staging.outcomes() == [(name, "success") for name in STAGING_STEPS[:5]] + [
        ("promote", "failure"),
        ("make promote TO=staging RECORD=last-verified", "failure"),
        ("cancelled", "skipped"),
    ], staging.log
    assert "/cdk-bootstrap/" in staging.step("promote").log
    assert "The deploy of cdk.out/assembly-staging failed" in staging.step("promote").log
    rollback = staging.steps[-2].log
    assert "No verified state to return to" in rollback and "the stage served nothing before it" in rollback
    assert staging.result == "failure"
    s3 = accounts.client("staging", "s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="staging-bucket")["Contents"]]
    assert f"artifacts/promoted/{digest}/model/manifest.json" in keys
    (started,) = [k for k in keys if k.startswith("promotions/")]
    record = json.loads(s3.get_object(Bucket="staging-bucket", Key=started)["Body"].read())
    assert (record["deploy"], record["digest"], record["commit"]) == ("started", digest, built[0].sha)


def test_nothing_is_rolled_back_when_the_promotion_never_ran(built, accounts, packaged_as_configured):
    """A job that fails before its promotion (here the credentials action refuses
    a role of an account the environment does not allow) skips the rollback:
    the stage was not touched."""
    wrong_account = {**variables("staging"), "AWS_ACCOUNT_ID": ACCOUNTS["prod"]}
    staging, _ = run_staging(built, accounts, packaged_as_configured[1]["tree_digest"], wrong_account)
    assert staging.outcomes()[4:] == [
        ("aws-actions/configure-aws-credentials", "failure"),
        ("promote", "skipped"),
        ("make promote TO=staging RECORD=last-verified", "skipped"),
        ("cancelled", "skipped"),
    ], staging.log
    assert "is not in 'allowed-account-ids'" in staging.steps[4].log
    assert staging.result == "failure"


@pytest.mark.parametrize(("head", "current"), [("c" * 40, True), ("d" * 40, False)])
def test_a_stale_run_never_reaches_the_prod_approval(built, tmp_path, head, current):
    """Scenario 6: a newer commit on main (or a re-run of an old run) skips prod
    before anyone is asked to approve it. `gh` answers as GitHub's API would."""
    runner, build = built
    needs = {"dev": succeeded(digest=TESTED), "staging": succeeded()}
    gh = gh_answering(tmp_path, head)
    gate = run_job(workflow(), "prod-gate", needs, runner=runner, env=gh)
    assert "environment" not in jobs()["prod-gate"]  # it runs before the approval wait
    assert gate.result == "success", gate.log
    assert gate.outputs == {"current": "true" if current else "false"}
    assert TESTED in gate.summary and ("skipped" in gate.summary) is not current
    # A current run's prod job starts (the approval is not emulated); it is stopped at its
    # credentials here (an account its environment does not allow), before any deploy.
    # Nothing to preview for a stale run either (a current run's diff step is run in
    # tests/delivery/test_workflow_preview.py).
    preview = succeeded()
    if not current:
        preview = run_job(workflow(), "prod-preview", {"build": build, "prod-gate": gate}, runner=runner, env=gh)
        assert (preview.result, preview.steps) == ("skipped", [])
    stop = {**variables("prod"), "AWS_ACCOUNT_ID": ACCOUNTS["staging"]}
    prod = run_job(
        workflow(),
        "prod",
        {"dev": needs["dev"], "build": build, "prod-gate": gate, "prod-preview": preview},
        runner=runner,
        env=gh,
        variables=stop,
    )
    if current:
        assert prod.step("still-current").outcome == "success", prod.log
        assert prod.outcomes()[-4:] == [
            ("aws-actions/configure-aws-credentials", "failure"),
            ("promote", "skipped"),
            ("make promote TO=prod RECORD=last-verified", "skipped"),
            ("cancelled", "skipped"),
        ]
    else:
        assert (prod.result, prod.steps) == ("skipped", [])


def test_a_run_that_went_stale_while_waiting_for_approval_deploys_nothing(built, tmp_path):
    """Scenario 6 after the gate: the approved job checks main's head again before
    anything else; a stale run fails there, and neither credentials, promotion nor
    rollback run."""
    runner, build = built
    gate = succeeded(current="true")
    prod = run_job(
        workflow(),
        "prod",
        {"dev": succeeded(digest=TESTED), "build": build, "prod-gate": gate, "prod-preview": succeeded()},
        runner=runner,
        env=gh_answering(tmp_path, "d" * 40),
        variables=variables("prod"),
    )
    assert prod.steps[0].name == "still-current" and prod.steps[0].outcome == "failure"
    assert "while this run waited for approval: nothing was deployed" in prod.steps[0].log
    assert {s.outcome for s in prod.steps[1:]} == {"skipped"}
    assert prod.result == "failure" and "stopped, stale" in prod.summary
