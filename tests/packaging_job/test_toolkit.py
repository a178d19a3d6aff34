"""The job as the training container runs and stops it: the real SageMaker training
toolkit, and SIGTERM (StopTrainingJob, a spot interruption) mid-download or
while the model's process runs the sample."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import tensorflow as tf

from fixtures.demo_model import save_weights_model, write_archive
from fixtures.hub_server import HubServer
from tests.packaging_job.conftest import JOB_DIR, misbehaving_model, model_runs
from tools.toolkit import run_toolkit, start_toolkit, write_layout


@pytest.fixture
def slow_handle(tmp_path):
    """A 64 MB model's archive, served at 4 MB/s: a job still downloading for seconds."""
    model = save_weights_model(str(tmp_path / "big"), megabytes=64)
    archive = tmp_path / "big.tar.gz"
    with archive.open("wb") as target:
        write_archive(model, target, compresslevel=1)
    with HubServer(bytes_per_second=4 << 20) as hub:
        hub.routes["/big/1"] = (200, archive)
        yield f"{hub.url}/big/1"


def wait_for(condition, deadline: float, *alive: subprocess.Popen) -> None:
    while not condition():
        assert time.monotonic() < deadline and all(process.poll() is None for process in alive)
        time.sleep(0.2)


def test_toolkit_runs_the_job_and_the_artifact_serves(hub, text_archive, tmp_path):
    hub.routes["/google/text/1"] = (200, text_archive)
    base = tmp_path / "opt-ml"
    write_layout(
        base,
        {
            "hub-handle": f"{hub.url}/google/text/1",
            "model-name": "text",
            "model-version": 3,
            "sample-input": json.dumps(["hello"]),
            "verify-load": "true",
        },
    )
    result = run_toolkit(base)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    served = base / "model" / "text" / "3"
    manifest = json.loads((base / "model" / "manifest.json").read_text())
    assert manifest["model_version"] == 3
    assert manifest["sample_output_shapes"] == {"embedding": [1, 16], "known": [1]}
    assert not (base / "output" / "failure").exists()
    model = tf.saved_model.load(str(served))
    known = model.signatures["serving_default"](tf.constant(["world", "zzz"]))["known"]
    assert known.numpy().tolist() == [1, 0]


def test_toolkit_failure_reason_is_the_jobs_own_message(hub, tmp_path):
    base = tmp_path / "opt-ml"
    write_layout(base, {"hub-handle": f"{hub.url}/missing/1", "model-name": "text"})
    result = run_toolkit(base)
    assert result.returncode != 0
    failure = (base / "output" / "failure").read_text()
    assert failure.startswith("HTTP 404 Not Found from ")
    assert "check the handle's spelling and version" in failure
    assert list((base / "model").iterdir()) == []


def test_sigterm_leaves_nothing_in_the_model_folder(slow_handle, tmp_path):
    model_dir, output = tmp_path / "out" / "model", tmp_path / "out" / "output"
    job = subprocess.Popen(
        [sys.executable, str(JOB_DIR / "train.py"), "--hub-handle", slow_handle, "--model-name", "big"],
        env={**os.environ, "SM_MODEL_DIR": str(model_dir), "SM_OUTPUT_DIR": str(output)},
        stdout=subprocess.DEVNULL,
    )
    wait_for(lambda: any(model_dir.glob(".staging-*/source/*")), time.monotonic() + 60, job)
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=60) == 143
    assert list(model_dir.iterdir()) == []
    assert (output / "failure").read_text().startswith("Stopped (SIGTERM)")


def test_a_stop_during_the_sample_run_ends_the_models_process_and_leaves_nothing(tmp_path):
    model_dir, output = tmp_path / "out" / "model", tmp_path / "out" / "output"
    source = misbehaving_model(str(tmp_path / "hang"), "hang")
    job = subprocess.Popen(
        [
            sys.executable,
            str(JOB_DIR / "train.py"),
            "--hub-handle",
            source,
            "--model-name",
            "m",
            "--sample-input",
            "[1]",
        ],
        env={**os.environ, "SM_MODEL_DIR": str(model_dir), "SM_OUTPUT_DIR": str(output)},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: model_runs(job.pid), time.monotonic() + 60, job)
        [child] = model_runs(job.pid)
        # To the whole process group, the model's process too: the job alone
        # decides when it ends, and cleans up once it has.
        os.killpg(job.pid, signal.SIGTERM)
        assert job.wait(timeout=60) == 143
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert list(model_dir.iterdir()) == []
    assert (output / "failure").read_text().startswith("Stopped (SIGTERM)")


def test_a_stop_that_reaches_only_the_toolkit_stops_the_job_and_leaves_nothing(slow_handle, tmp_path):
    base = tmp_path / "opt-ml"
    model_dir, failure = base / "model", base / "output" / "failure"
    write_layout(base, {"hub-handle": slow_handle, "model-name": "big"})
    toolkit = start_toolkit(base)
    assert toolkit.stdout is not None
    # The job writes to the toolkit's stdout: keep the pipe drained.
    threading.Thread(target=toolkit.stdout.read, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        wait_for(lambda: any(model_dir.glob(".staging-*/source/*")), deadline, toolkit)
        # The toolkit alone, not its process group: it has no SIGTERM handler,
        # dies, and does not pass the signal on to train.py.
        os.kill(toolkit.pid, signal.SIGTERM)
        assert toolkit.wait(timeout=30) == -signal.SIGTERM
        # Unless told of the toolkit's death, the job runs on and publishes.
        wait_for(lambda: (failure.exists() and failure.read_text()) or (model_dir / "manifest.json").exists(), deadline)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(toolkit.pid, signal.SIGKILL)  # train.py, should it outlive the test
    assert list(model_dir.iterdir()) == []
    assert failure.read_text().startswith("Stopped (SIGTERM)")


# The job with a stop part-way (once the files are fetched) and another during
# the clean-up that stop starts: two real SIGTERMs, to the job's own process.
_STOPPED_TWICE = """
import os, shutil, signal, sys
import train
from packager import savedmodel

def signalled(call):
    def wrapper(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return call(*args, **kwargs)
    return wrapper

savedmodel.find_root = signalled(savedmodel.find_root)
shutil.rmtree = signalled(shutil.rmtree)
sys.exit(train.main(sys.argv[1:]))
"""


def test_a_second_sigterm_does_not_cut_the_clean_up_short(text_model, tmp_path):
    model_dir, output = tmp_path / "out" / "model", tmp_path / "out" / "output"
    job = subprocess.run(
        [sys.executable, "-c", _STOPPED_TWICE, "--hub-handle", str(text_model), "--model-name", "text"],
        cwd=JOB_DIR,
        env={**os.environ, "SM_MODEL_DIR": str(model_dir), "SM_OUTPUT_DIR": str(output)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert job.returncode == 143, job.stdout + job.stderr
    assert list(model_dir.iterdir()) == []
    assert (output / "failure").read_text().startswith("Stopped (SIGTERM)")
