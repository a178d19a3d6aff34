"""Fixtures for the packaging job: a real SavedModel, its archive, a loopback hub,
models that hang or crash, and the job's model-running child processes."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile

import pytest

JOB_DIR = pathlib.Path(__file__).resolve().parents[2] / "packaging_job"
# The job imports `packager` from its own folder, as the training toolkit runs it.
sys.path.insert(0, str(JOB_DIR))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from fixtures.demo_model import compressed_archive, save_text_model  # noqa: E402
from fixtures.hub_server import HubServer  # noqa: E402


@pytest.fixture(scope="session")
def text_model(tmp_path_factory) -> pathlib.Path:
    return pathlib.Path(save_text_model(str(tmp_path_factory.mktemp("source") / "model")))


@pytest.fixture(scope="session")
def text_archive(text_model) -> bytes:
    return compressed_archive(str(text_model))


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture
def open_folder():
    """A root-owned folder anyone may enter and read, as SageMaker's /opt/ml, the
    job's code and site-packages are: what stops a write in it is its mode alone."""
    folder = tempfile.mkdtemp()
    os.chmod(folder, 0o755)
    yield pathlib.Path(folder)
    shutil.rmtree(folder)


def model_runs(parent: int) -> list[int]:
    """The process ids of `parent`'s children that run a model (`packager.model_run`)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat, open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                ppid = int(stat.read().rpartition(")")[2].split()[1])
                runs_a_model = b"model_run" in cmdline.read()
        except (ValueError, OSError):  # not a process, or one that has just ended
            continue
        if ppid == parent and runs_a_model:
            found.append(int(entry))
    return found


def misbehaving_model(folder: str, kind: str) -> str:
    """A model whose signature hangs (`hang`) or aborts the process (`abort`)."""

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            if kind == "hang":
                forever = tf.while_loop(lambda k: k >= 0, lambda k: k + 1, [tf.constant(0, tf.int64)])[0]
                return {"y": x * tf.cast(forever, tf.float32)}
            with tf.control_dependencies([tf.raw_ops.Abort(error_msg="crash")]):
                return {"y": x * 2.0}

    model = Model()
    tf.saved_model.save(model, folder, signatures={"serving_default": model.serve})
    return folder
