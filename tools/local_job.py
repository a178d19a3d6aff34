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
import sys
import tempfile
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import NoCredentialsError

from packaging_job.packager import contract
from stacks.stage.region import active_profile, environment_region
from tools.cli import UserError, run, switched_on
from tools.toolkit import failure_message, stream_toolkit, write_layout

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEMO_SAMPLE = '["hello", "world"]'
# Quiet: TensorFlow's C++ logging off, the toolkit's at ERROR.
_QUIET_LOG_LEVEL = 40
_QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}


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
        default=switched_on(env("VERBOSE")),
        help="show the toolkit's and TensorFlow's output",
    )
    args = parser.parse_args(argv)
    args.handle = job_handle(args.handle)
    sample = _sample(args.sample_input or (DEMO_SAMPLE if not args.handle else ""))
    out = _out_folder(args.out)
    if not args.verbose:
        os.environ.update(_QUIET_ENV)
    if contract.is_s3_handle(args.handle):
        malformed = contract.malformed_s3_handle(args.handle)
        if malformed:
            raise UserError(malformed)
        # The toolkit and the job, in their own processes, read this environment.
        os.environ.update(aws_environment(os.environ))
        _require_credentials(
            boto3.Session(profile_name=active_profile(os.environ), region_name=environment_region(os.environ))
        )
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


def job_handle(handle: str) -> str:
    """`handle` as the job must get it: a local one (a path, or a file: URL) as an
    absolute path, since the toolkit runs the job from its own copy of the code
    folder, where a relative path names nothing; any other handle as given."""
    handle = handle.strip()
    if not handle or contract.is_s3_handle(handle):
        return handle
    try:
        parts = urlsplit(handle)
    except ValueError:  # a malformed host: not a local handle, and the job says why
        return handle
    if parts.scheme not in ("", "file"):
        return handle
    # Read as `packager/source.py` reads a local handle: a file: URL by its path.
    return os.path.abspath(parts.path if parts.scheme == "file" else handle)


def aws_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The AWS variables an s3:// run sets for the toolkit and the job: the profile
    the README's rule picks (AWS_PROFILE, else AWS_DEFAULT_PROFILE) and the region
    rule's region (`stacks/stage/region.py`).

    botocore reads AWS_DEFAULT_PROFILE before AWS_PROFILE (its config variable
    `profile`), and AWS_DEFAULT_REGION for the region: both names carry the chosen
    value, so every process reads the same.
    """
    region = environment_region(environ)
    variables = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    profile = active_profile(environ)
    if profile:
        variables.update(AWS_PROFILE=profile, AWS_DEFAULT_PROFILE=profile)
    return variables


def _require_credentials(session: boto3.Session) -> None:
    """Stop before the toolkit starts if `session` has no usable AWS credentials.

    The toolkit builds a boto3 session on start, so a missing profile would fail
    it with a traceback; here it fails as tools.cli explains it, in one line.
    boto3 looks for credentials in its documented order ("Configuring
    credentials", boto3 guide) and finds none as None.
    """
    if session.get_credentials() is None:
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
