"""The packaging job run by the real SageMaker training toolkit on a local /opt/ml.

Lays out a folder shaped like /opt/ml (config files, channels, `model/`,
`output/`), points SAGEMAKER_BASE_DIR at it and runs the toolkit
(`sagemaker_training.cli.train.main`), which copies the submit directory and
runs `train.py` with the hyperparameters as `--name value` arguments; and reads
a failed run's reason as SageMaker would show it. `make local`
(`local_job.py`), the rehearsal's training jobs and the job tests run it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from packaging_job.packager import contract, progress

JOB_DIR = pathlib.Path(__file__).resolve().parent.parent / "packaging_job"
PLACEHOLDER = "placeholder\n"
# The toolkit's own report of a script that exited non-zero.
_TOOLKIT_ERROR_LINES = ("ExecuteUserScriptError", "ExitCode ", "ErrorMessage ", "Command ")


def write_layout(base: pathlib.Path, hyperparameters: dict[str, object], submit_directory: str = str(JOB_DIR)) -> None:
    """The files the toolkit reads from /opt/ml, with the `train` placeholder channel.

    `submit_directory` is the job's source: a folder, or a tar.gz as SageMaker ships it.
    """
    # The toolkit JSON-decodes every hyperparameter value, as SageMaker sends them.
    encoded = {
        "sagemaker_program": json.dumps(contract.PROGRAM),
        "sagemaker_submit_directory": json.dumps(submit_directory),
        **{key: json.dumps(value) for key, value in hyperparameters.items()},
    }
    write_opt_ml(base, encoded, {"train": {"ContentType": "text/csv", "TrainingInputMode": "File"}})
    (base / "input" / "data" / "train" / "train.csv").write_text(PLACEHOLDER)


def write_opt_ml(base: pathlib.Path, encoded: dict[str, str], channels: dict[str, dict]) -> None:
    """/opt/ml as SageMaker lays it out: config files (hyperparameters already
    JSON-encoded, as in CreateTrainingJob), one empty folder per channel, and
    empty `model/` and `output/`. The toolkit writes a failure to `output/`;
    without the folder it cannot, and then exits 0 on a failed job."""
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(encoded))
    # A host name that does not resolve makes the toolkit wait forever.
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "localhost", "hosts": ["localhost"]}))
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    for channel in channels:
        (base / "input" / "data" / channel).mkdir(parents=True, exist_ok=True)
    (base / "model").mkdir(exist_ok=True)
    (base / "output").mkdir(exist_ok=True)


def run_toolkit(base: pathlib.Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the toolkit in a child process (it reads SAGEMAKER_BASE_DIR at import); its output captured."""
    return subprocess.run(
        _toolkit_command(),
        env={**os.environ, "SAGEMAKER_BASE_DIR": str(base)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _toolkit_command() -> list[str]:
    return [sys.executable, "-c", "from sagemaker_training.cli.train import main; main()"]


def start_toolkit(base: pathlib.Path, environ: dict[str, str] | None = None) -> subprocess.Popen:
    """The toolkit as a running process, stdout and stderr merged, line by line;
    `environ` replaces this process's environment (as a container's is its own),
    and so decides how much TensorFlow logs."""
    env = {**(os.environ if environ is None else environ), "SAGEMAKER_BASE_DIR": str(base)}
    return subprocess.Popen(
        _toolkit_command(),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stream_toolkit(
    base: pathlib.Path, log: pathlib.Path | None, show: Callable[[str], None], timeout: float = 3600
) -> int:
    """Run the toolkit to its end (at most `timeout` seconds): all its output to `log`
    and the job's progress lines to `show`, or, without a log, every line to `show`.
    The job never outlives this call, even on Ctrl-C."""
    with contextlib.ExitStack() as stack:
        everything = stack.enter_context(log.open("w")) if log else None
        process = stack.enter_context(start_toolkit(base))
        timer = threading.Timer(timeout, _stop, (process,))
        timer.start()
        try:
            for line in process.stdout or ():  # started with stdout=PIPE
                if everything is None:
                    show(line.rstrip())
                    continue
                everything.write(line)
                message = progress.message(line)
                # A failure is shown once, as the run's last line.
                if message is not None and not progress.is_failure(message):
                    show(message)
            return process.wait()
        finally:
            timer.cancel()
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def failure_message(base: pathlib.Path, log: pathlib.Path | None, status: int) -> str:
    """The job's FailureReason as SageMaker would show it (the failure file), in one line.

    For an error the job did not handle, the toolkit writes a generic reason
    (ExecuteUserScriptError, the exit code); the job's last output line says more.
    For the toolkit's own crash ("Framework Error:", its traceback, then the
    exception's message) the message's last line is the reason.
    """
    failure = base / "output" / "failure"
    text = failure.read_text().strip() if failure.exists() else ""
    if text.startswith("Framework Error:"):
        text = text.splitlines()[-1]
    if text and not text.startswith("ExecuteUserScriptError"):
        return " ".join(text.split())
    last = ""
    if log is not None and log.exists():
        output = [
            line.strip()
            for line in log.read_text().splitlines()
            if line.strip() and "sagemaker-training-toolkit" not in line and not line.startswith(_TOOLKIT_ERROR_LINES)
        ]
        last = f": {output[-1]}" if output else ""
    return f"the job exited with code {status}{last}"
