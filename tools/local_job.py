"""Run the packaging job locally the way the TensorFlow training container does.

Lays out a folder shaped like /opt/ml, points SAGEMAKER_BASE_DIR at it and runs
the real SageMaker training toolkit (`sagemaker_training.cli.train.main`), which
copies `packaging_job/` as the submit directory and runs `train.py` with the
hyperparameters as `--name value` arguments. `make local` is this module's main:
it shows the job's own progress lines (all output with `--verbose`), ends a
failed job with the job's own message, loads the result from
`<model>/<name>/1/` as TF Serving would, and keeps it only in `--out`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator

import boto3
from botocore.exceptions import NoCredentialsError

from packaging_job.packager import contract, progress
from tools.cli import UserError, run

ROOT = pathlib.Path(__file__).resolve().parent.parent
JOB_DIR = ROOT / "packaging_job"
PLACEHOLDER = "placeholder\n"
DEMO_SAMPLE = '["hello", "world"]'
# Quiet: TensorFlow's C++ logging off, the toolkit's at ERROR.
_QUIET_LOG_LEVEL = 40
_QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}
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


@contextlib.contextmanager
def stderr_to(path: pathlib.Path | None) -> Iterator[None]:
    """Send this process's stderr (TensorFlow's C++ logging included) to `path`."""
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("a") as target:
        os.dup2(target.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def check_served(served: pathlib.Path, signature: str, sample) -> list[str]:
    """Load the version folder as TF Serving would and run `sample`: printable lines."""
    import tensorflow as tf

    from packaging_job.packager import savedmodel, verify
    from packaging_job.packager.errors import PackagingError

    info = savedmodel.read_info(str(served))
    loaded = tf.saved_model.load(str(served))
    lines = [f"TF Serving would load {served} (signatures: {', '.join(sorted(info.signatures))})"]
    if sample is not None:
        try:
            outputs = verify.run_sample(loaded, savedmodel.require_signature(info, signature), sample)
        except PackagingError as error:
            raise UserError(str(error)) from error
        for name, tensor in sorted(outputs.items()):
            values = tensor.numpy().ravel()[:4].tolist()
            lines.append(f"  {name}: shape {list(tensor.shape)}, first values {values}")
    return lines


def main(argv: list[str]) -> int:
    # make passes its variables (HANDLE=, SAMPLE=, ...) in the environment: no
    # shell quoting stands between a sample like ["it's"] and the job.
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handle", default=env("HANDLE", ""), help="hub handle; empty builds a demo model")
    parser.add_argument("--model-name", default=env("MODEL_NAME") or "demo")
    parser.add_argument("--signature", default=env("SIGNATURE") or contract.DEFAULT_SIGNATURE)
    parser.add_argument(
        "--sample-input",
        default=env("SAMPLE", ""),
        help=f"JSON instances or columns (the demo model's default: {DEMO_SAMPLE})",
    )
    parser.add_argument("--out", default=env("OUT", ""), help="keep the packaged model here (an empty or new folder)")
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=bool(env("VERBOSE")),
        help="show the toolkit's and TensorFlow's output",
    )
    args = parser.parse_args(argv)
    sample = _sample(args.sample_input or (DEMO_SAMPLE if not args.handle else ""))
    out = _out_folder(args.out)
    if not args.verbose:
        os.environ.update(_QUIET_ENV)
    if args.handle.startswith("s3://"):
        _require_credentials()
    else:
        # Only an s3:// handle needs AWS; the toolkit reads the profile on
        # start, and a stale AWS_PROFILE must not fail a local run.
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(name, None)
    created = out is not None and not out.exists()
    try:
        with tempfile.TemporaryDirectory(prefix="packaging-local-") as temporary:
            lines = package_locally(pathlib.Path(temporary), args, sample, out)
    except BaseException:
        if created and out is not None and out.exists():
            shutil.rmtree(out)
        raise
    print("\n".join(lines))
    print(f"Kept in {out}" if out else "Not kept (OUT=folder keeps the packaged model).")
    return 0


def _require_credentials() -> None:
    """Stop before the toolkit starts if this environment has no usable AWS credentials.

    The toolkit builds a boto3 session on start, so a missing profile would fail
    it with a traceback; here it fails as tools.cli explains it, in one line.
    boto3 looks for credentials in its documented order ("Configuring
    credentials", boto3 guide) and finds none as None.
    """
    if boto3.Session().get_credentials() is None:
        raise NoCredentialsError()


def _sample(text: str):
    try:
        return json.loads(text) if text else None
    except ValueError as error:
        raise UserError(f"SAMPLE is not JSON ({error}): give instances, e.g. '[\"hello\"]'.") from error


def _out_folder(text: str) -> pathlib.Path | None:
    out = pathlib.Path(text).resolve() if text else None
    if out and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"OUT={out} is not an empty folder: name a new or empty folder for the packaged model.")
    return out


def package_locally(work: pathlib.Path, args, sample, out: pathlib.Path | None) -> list[str]:
    """Run the job on `args.handle` (or a demo model) in `work`; the served model's lines."""
    log = None if args.verbose else work / "job.log"
    handle = args.handle
    if not handle:
        print("Building a demo SavedModel (no internet needed)", flush=True)
        with stderr_to(log):
            from fixtures.demo_model import save_text_model

            handle = save_text_model(str(work / "demo" / "model"))
    base = work / "opt-ml"
    write_layout(
        base,
        {
            contract.HUB_HANDLE: handle,
            contract.MODEL_NAME: args.model_name,
            contract.MODEL_VERSION: 1,
            contract.SIGNATURE: args.signature,
            **({contract.SAMPLE_INPUT: json.dumps(sample)} if sample is not None else {}),
            **({} if args.verbose else {"sagemaker_container_log_level": _QUIET_LOG_LEVEL}),
        },
    )
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (base / "model").rmdir()
        (base / "model").symlink_to(out, target_is_directory=True)
    print(f"Running the packaging job through the SageMaker training toolkit ({base})", flush=True)
    indent = "" if args.verbose else "  "
    status = stream_toolkit(base, log, lambda line: print(f"{indent}{line}", flush=True))
    if status != 0 or (base / "output" / "failure").exists():
        hint = "" if args.verbose else " (VERBOSE=1 shows the toolkit's and TensorFlow's output)"
        raise UserError(f"The packaging job failed: {failure_message(base, log, status)}{hint}")
    with stderr_to(log):
        return check_served(base / "model" / args.model_name / "1", args.signature, sample)


if __name__ == "__main__":
    sys.exit(run(main))
