"""SageMaker script-mode entry point of the packaging job.

Options arrive as hyperparameters (`--name value`); the artifact goes to
SM_MODEL_DIR, and a failure's message to SM_OUTPUT_DIR/failure, which SageMaker
shows as the job's FailureReason. A stop (StopTrainingJob, a spot
interruption) arrives as SIGTERM, to this process or to the toolkit that runs
it (whose death the kernel then signals here): it unwinds the run like any
failure, so nothing half-written is left in the model folder.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import signal
import sys

from packager import contract, progress
from packager.archive import Limits
from packager.errors import PackagingError
from packager.package import package


class Stopped(BaseException):
    """SIGTERM: SageMaker is stopping the job."""


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _model_name(value: str) -> str:
    # fullmatch: with re.match the pattern's `$` would let a trailing newline through.
    if not re.fullmatch(contract.MODEL_NAME_PATTERN, value):
        raise argparse.ArgumentTypeError(f"{value!r} is not allowed; {contract.MODEL_NAME_ALLOWED}")
    return value


def parser() -> argparse.ArgumentParser:
    """The job's options: the handler's hyperparameters, as the toolkit passes them."""
    parser = argparse.ArgumentParser(description=__doc__)

    def option(name: str, **kwargs) -> None:
        # The toolkit passes hyperparameter keys as given: accept - and _ alike.
        parser.add_argument(f"--{name}", f"--{name.replace('-', '_')}", **kwargs)

    option(contract.HUB_HANDLE, required=True)
    option(contract.MODEL_NAME, type=_model_name, required=True)
    option(contract.MODEL_VERSION, type=int, default=1)
    option(contract.SIGNATURE, default=contract.DEFAULT_SIGNATURE)
    option(contract.SAMPLE_INPUT, type=json.loads, default=None, help="JSON instances or columns")
    option(contract.VERIFY_LOAD, type=_flag, default=False)
    option(contract.SERVING_TF_VERSION, default=None)
    option("inference-code", default=None, help="path of a .py file, relative to this folder")
    option(contract.HUB_SHA256, default=None, help="the archive's sha256; any other bytes are refused")
    defaults = Limits()
    for field, name in contract.LIMITS.items():
        option(name, type=int, default=getattr(defaults, field), dest=field)
    option("model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    # Known options only: a container may add arguments of its own.
    args, _unknown = parser().parse_known_args(argv)
    return args


def _stop(signum, frame) -> None:
    # Once: a second SIGTERM (a repeated stop, or the toolkit's death below)
    # must not cut short the clean-up the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stopped()


def _stop_with_the_toolkit() -> None:
    """Have the kernel send this process SIGTERM when the toolkit that started it dies."""
    # The toolkit neither handles nor forwards SIGTERM: a stop that reaches only
    # it ends it and would leave this job running on, unaware (prctl(2), PR_SET_PDEATHSIG).
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1  # <linux/prctl.h>
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _stop)
    _stop_with_the_toolkit()
    from_s3 = contract.is_s3_handle(args.hub_handle)
    try:
        malformed = contract.malformed_s3_handle(args.hub_handle)
        if malformed:
            raise PackagingError(malformed)
        package(
            args.hub_handle,
            args.model_dir,
            args.model_name,
            args.model_version,
            signature=args.signature,
            sample_input=args.sample_input,
            verify_load=args.verify_load,
            serving_tf_version=args.serving_tf_version,
            inference_code=_in_submit_dir(args.inference_code),
            hub_sha256=args.hub_sha256 or None,
            limits=Limits(**{field: getattr(args, field) for field in contract.LIMITS}),
            s3_client=_s3_client() if from_s3 else None,
            log=lambda message: print(progress.line(message), flush=True),
        )
    except PackagingError as error:
        _report_failure(str(error))
        return 1
    except Stopped:
        _report_failure("Stopped (SIGTERM) before the model was packaged; nothing was published.")
        return 143
    return 0


def _s3_client():
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.client("s3")
    except BotoCoreError as error:
        raise PackagingError(f"Cannot use S3 to read the handle: {error}.") from error


def _in_submit_dir(path: str | None) -> str | None:
    # The toolkit runs this script from the submit directory's copy.
    if not path:
        return None
    return path if os.path.isabs(path) else os.path.join(os.path.dirname(os.path.abspath(__file__)), path)


def _report_failure(message: str) -> None:
    print(progress.line(f"{progress.FAILED}{message}"), flush=True)
    output_dir = os.environ.get("SM_OUTPUT_DIR")
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        # Written first, so the toolkit's generic traceback does not replace it.
        with open(os.path.join(output_dir, "failure"), "w") as handle:
            handle.write(message)


if __name__ == "__main__":
    sys.exit(main())
