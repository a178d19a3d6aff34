"""SageMaker script-mode entry point of the packaging job.

Options arrive as hyperparameters (`--name value`); the artifact goes to
SM_MODEL_DIR, and a failure's message to SM_OUTPUT_DIR/failure, which SageMaker
shows as the job's FailureReason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from packager import progress
from packager.errors import PackagingError
from packager.package import package


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)

    def option(name: str, **kwargs) -> None:
        # The toolkit passes hyperparameter keys as given: accept - and _ alike.
        parser.add_argument(f"--{name}", f"--{name.replace('-', '_')}", **kwargs)

    option("hub-handle", required=True)
    option("model-name", required=True)
    option("model-version", type=int, default=1)
    option("signature", default="serving_default")
    option("sample-input", type=json.loads, default=None, help="JSON instances or columns")
    option("verify-load", type=_flag, default=False)
    option("serving-tf-version", default=None)
    option("inference-code", default=None, help="path of a .py file, relative to this folder")
    option("model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    args, _unknown = parser.parse_known_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
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
            s3_client=_s3_client() if args.hub_handle.startswith("s3://") else None,
            log=lambda message: print(progress.line(message), flush=True),
        )
    except PackagingError as error:
        _report_failure(str(error))
        return 1
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
