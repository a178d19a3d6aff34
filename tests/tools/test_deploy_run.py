"""`make deploy`'s command and its watcher: the deploy's own output and exit code
pass through whatever the outcome, watching ends with the deploy after one last
look, a watcher that fails steps aside, an unknown stage stops before any deploy."""

from __future__ import annotations

import subprocess
import sys
import threading

from tests.conftest import ROOT
from tests.tools.stubs import JOB, SERVING, STARTED, stack_states, stubbed_stage
from tools.deploy_progress import Watcher, run_deploy, watch


def test_the_deploys_output_and_exit_code_pass_through(capfd):
    code = run_deploy([sys.executable, "-c", "print('cdk says hello'); raise SystemExit(3)"], watcher=None)
    assert code == 3 and "cdk says hello" in capfd.readouterr().out


def test_a_deploy_killed_by_a_signal_exits_as_a_shell_reports_it():
    # An OOM-killed node (SIGKILL) or a stop (SIGTERM): 128 + the signal, not Python's -N.
    assert run_deploy(["sh", "-c", "kill -TERM $$"], watcher=None) == 143
    assert run_deploy(["sh", "-c", "kill -KILL $$"], watcher=None) == 137


def test_make_deploy_asks_the_cli_for_event_lines_not_its_redrawn_bar():
    # The bar rewrites its last lines in place on a terminal, over the watcher's lines.
    dry_run = subprocess.run(["make", "-n", "deploy", "STAGE=dev"], cwd=ROOT, capture_output=True, text=True)
    (deploy,) = [line for line in dry_run.stdout.splitlines() if " deploy --app " in line]
    assert deploy.endswith("--progress events")


def test_watching_ends_with_a_failed_deploy_after_one_last_look(capfd):
    stage, sagemaker, logs, cloudformation = stubbed_stage()
    lines: list[str] = []
    watcher = Watcher(stage, STARTED, lines.append, clock=lambda: STARTED + 70)
    no_job_no_endpoint = (
        lambda: sagemaker.add_response("list_training_jobs", {"TrainingJobSummaries": []}),
        lambda: sagemaker.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint"),
    )
    # A look while the update runs, then the one last look once the deploy has ended.
    stack_states(cloudformation, "CREATE_COMPLETE", "UPDATE_IN_PROGRESS")
    for add in no_job_no_endpoint:
        add()
    stack_states(cloudformation, "CREATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", reason="rolled back")
    for add in no_job_no_endpoint:
        add()
    with sagemaker, logs, cloudformation:
        watcher.look()
        code = run_deploy(
            [sys.executable, "-c", "print('cdk: deploy failed'); raise SystemExit(1)"], watcher, poll_seconds=3600
        )
        # Every scripted answer was asked for: the watcher looked once more, then stopped.
        cloudformation.assert_no_pending_responses()
        sagemaker.assert_no_pending_responses()
    assert code == 1 and "cdk: deploy failed" in capfd.readouterr().out
    assert lines[-1] == f"progress [01:10] stack {SERVING}: UPDATE_ROLLBACK_COMPLETE: rolled back"


def test_a_watcher_that_cannot_watch_steps_aside_and_the_deploy_goes_on():
    stage, sagemaker, _, cloudformation = stubbed_stage()
    lines: list[str] = []
    watcher = Watcher(stage, STARTED, lines.append)
    watcher.job = JOB
    stack_states(cloudformation, "CREATE_COMPLETE", "UPDATE_IN_PROGRESS")
    sagemaker.add_client_error("describe_training_job", "AccessDeniedException", "not authorized")
    done = threading.Event()
    done.set()
    with sagemaker, cloudformation:
        watch(watcher, done, poll_seconds=0)
    lines = [line for line in lines if " stack " not in line]
    assert len(lines) == 1 and lines[0].startswith("progress: no longer shown (") and "the deploy goes on" in lines[0]


def test_a_watcher_that_could_never_watch_says_not_shown():
    stage, _, _, cloudformation = stubbed_stage()
    lines: list[str] = []
    watcher = Watcher(stage, STARTED, lines.append)
    cloudformation.add_client_error("describe_stacks", "AccessDenied", "not authorized: DescribeStacks")
    done = threading.Event()
    done.set()
    with cloudformation:
        watch(watcher, done, poll_seconds=0)
    assert len(lines) == 1 and lines[0].startswith("progress: not shown (") and "DescribeStacks" in lines[0]


def test_an_endpoint_it_may_not_describe_is_no_longer_shown_not_taken_for_absent():
    stage, sagemaker, _, cloudformation = stubbed_stage()
    lines: list[str] = []
    watcher = Watcher(stage, STARTED, lines.append)
    stack_states(cloudformation, "CREATE_COMPLETE", "UPDATE_IN_PROGRESS")
    sagemaker.add_response("list_training_jobs", {"TrainingJobSummaries": []})
    sagemaker.add_client_error("describe_endpoint", "AccessDeniedException", "not authorized: DescribeEndpoint")
    done = threading.Event()
    done.set()
    with sagemaker, cloudformation:
        watch(watcher, done, poll_seconds=0)
    assert lines[-1].startswith("progress: no longer shown (") and "DescribeEndpoint" in lines[-1]


def test_an_unknown_stage_stops_in_one_line_before_any_deploy(tmp_path):

    marker = tmp_path / "deployed"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.deploy_progress",
            "--stage",
            "qa",
            "--",
            sys.executable,
            "-c",
            f"open({str(marker)!r}, 'w').close()",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and not marker.exists()
    assert result.stderr.strip() == "Configuration error: stage: 'qa' is not declared; allowed: dev, prod, staging"
