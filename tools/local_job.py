"""Run the packaging job locally the way the TensorFlow training container does.

Lays out a folder shaped like /opt/ml, points SAGEMAKER_BASE_DIR at it and runs
the real SageMaker training toolkit (`sagemaker_training.cli.train.main`), which
copies `packaging_job/` as the submit directory and runs `train.py` with the
hyperparameters as `--name value` arguments. `make local` is this module's main.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
JOB_DIR = ROOT / "packaging_job"
PLACEHOLDER = "placeholder\n"


def write_layout(
    base: pathlib.Path, hyperparameters: dict[str, object], submit_directory: str = str(JOB_DIR)
) -> None:
    """The files the toolkit reads from /opt/ml, with the `train` placeholder channel.

    `submit_directory` is the job's source: a folder, or a tar.gz as SageMaker ships it.
    """
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    # The toolkit JSON-decodes every hyperparameter value, as SageMaker sends them.
    encoded = {
        "sagemaker_program": json.dumps("train.py"),
        "sagemaker_submit_directory": json.dumps(submit_directory),
        **{key: json.dumps(value) for key, value in hyperparameters.items()},
    }
    (config / "hyperparameters.json").write_text(json.dumps(encoded))
    # A host name that does not resolve makes the toolkit wait forever.
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "localhost", "hosts": ["localhost"]})
    )
    (config / "inputdataconfig.json").write_text(
        json.dumps({"train": {"ContentType": "text/csv", "TrainingInputMode": "File"}})
    )
    train = base / "input" / "data" / "train"
    train.mkdir(parents=True, exist_ok=True)
    (train / "train.csv").write_text(PLACEHOLDER)
    (base / "model").mkdir(exist_ok=True)


def run_toolkit(
    base: pathlib.Path, timeout: float = 600, capture: bool = True
) -> subprocess.CompletedProcess:
    """Run the toolkit in a child process: it reads SAGEMAKER_BASE_DIR at import.

    With `capture=False` its output (the job's progress) goes straight to the terminal.
    """
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base)}
    return subprocess.run(
        [sys.executable, "-c", "from sagemaker_training.cli.train import main; main()"],
        env=env,
        capture_output=capture,
        text=True,
        timeout=timeout,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handle", default="", help="hub handle; empty builds a demo model")
    parser.add_argument("--model-name", default="demo")
    parser.add_argument("--sample-input", default='["hello", "world"]')
    args = parser.parse_args(argv)

    work = pathlib.Path(tempfile.mkdtemp(prefix="packaging-local-"))
    handle = args.handle
    if not handle:
        from tools.demo_model import save_text_model

        print("Building a demo SavedModel (no internet needed)", flush=True)
        handle = save_text_model(str(work / "demo" / "model"))
    base = work / "opt-ml"
    write_layout(
        base,
        {
            "hub-handle": handle,
            "model-name": args.model_name,
            "model-version": 1,
            "sample-input": args.sample_input,
        },
    )
    print(f"Running the SageMaker training toolkit in {base}", flush=True)
    result = run_toolkit(base, timeout=3600, capture=False)
    if result.returncode != 0:
        failure = base / "output" / "failure"
        print(f"Job failed: {failure.read_text() if failure.exists() else 'see the log above'}")
        return 1

    import tensorflow as tf

    served = base / "model" / args.model_name / "1"
    model = tf.saved_model.load(str(served))
    prediction = model.signatures["serving_default"](tf.constant(json.loads(args.sample_input)))
    print(f"TF Serving would load {served}")
    for name, tensor in sorted(prediction.items()):
        print(f"  {name}: shape {list(tensor.shape)}, first values {tensor.numpy().ravel()[:4].tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
