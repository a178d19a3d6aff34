"""The model's graph runs in a child process (`packager/model_run.py`): nothing of
it outlives the run, a model that hangs or crashes is one line, and the child
answers the same outputs and messages the job had when it ran the model itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from packager import model_run
from packager.errors import PackagingError
from packager.package import package
from packager.savedmodel import read_info

from tests.packaging_job.conftest import JOB_DIR, misbehaving_model, model_runs


def lingering_model(folder: str, model_dir: str) -> str:
    """The auditor's model: its signature starts a tf.data prefetch under a
    `shared_name`, whose thread, once the call has returned, waits for
    `<model_dir>/manifest.json` (written after every check) and then writes a
    second SavedModel beside the first."""

    def element(i):
        def late():
            published = tf.strings.join([model_dir, "/manifest.json"])
            waited = tf.while_loop(
                lambda k: tf.logical_and(tf.size(tf.io.matching_files(published)) == 0, k < 10**8),
                lambda k: k + 1,
                [tf.constant(0, tf.int64)],
            )[0]
            written = tf.io.write_file(tf.strings.join([model_dir, "/evil/1/saved_model.pb"]), "x")
            with tf.control_dependencies([written]):
                return tf.identity(i + 0 * waited)

        return tf.cond(i > 0, late, lambda: tf.identity(i))

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            dataset = tf.data.Dataset.range(2).map(element).prefetch(2)
            shapes = {"output_types": [tf.int64], "output_shapes": [[]]}
            iterator = tf.raw_ops.IteratorV2(shared_name="linger", container="", **shapes)
            started = tf.raw_ops.MakeIterator(dataset=dataset._variant_tensor, iterator=iterator)
            with tf.control_dependencies([started]):
                first = tf.raw_ops.IteratorGetNext(iterator=iterator, **shapes)
            with tf.control_dependencies(first):
                return {"y": x * 2.0}

    model = Model()
    tf.saved_model.save(model, folder, signatures={"serving_default": model.serve})
    return folder


@pytest.mark.parametrize("as_nobody", [False, True])
def test_a_thread_the_model_leaves_running_writes_nothing_after_the_checks(
    tmp_path, open_folder, monkeypatch, as_nobody
):
    if as_nobody and os.geteuid() != 0:
        pytest.skip("the model runs as nobody only when the job is root")
    if not as_nobody:
        monkeypatch.setattr(model_run, "_run_as", lambda: None)
    model_dir = open_folder / "model"
    source = lingering_model(str(tmp_path / "source"), str(model_dir))
    try:
        record = package(source, str(model_dir), "text", 1, sample_input=[1.0], log=lambda m: None)
    except PackagingError as refused:  # a model whose write failed in the run: refused, fine too
        record = {"files": []}
        assert os.listdir(model_dir) == [], refused
    listed = sorted([entry["path"] for entry in record["files"]] + (["manifest.json"] if record["files"] else []))
    # Before the child process, the thread wrote within milliseconds of the manifest.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        found = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if not p.is_dir())
        assert found == listed
        time.sleep(0.1)
    assert model_runs(os.getpid()) == []


def test_a_model_that_hangs_is_stopped_at_the_time_limit(tmp_path):
    source = misbehaving_model(str(tmp_path / "hang"), "hang")
    signature = read_info(source).signatures["serving_default"]
    started = time.monotonic()
    with pytest.raises(PackagingError, match=r"took over 5 seconds and was stopped: the model hangs on this input"):
        model_run.load_and_run(source, signature, [1.0], timeout=5)
    assert time.monotonic() - started < 30
    assert model_runs(os.getpid()) == []


def test_a_model_that_crashes_tensorflow_is_one_line(tmp_path):
    source = misbehaving_model(str(tmp_path / "abort"), "abort")
    signature = read_info(source).signatures["serving_default"]
    with pytest.raises(PackagingError, match=r"crashed \(SIGABRT\): TensorFlow's output above, in the job's log"):
        model_run.load_and_run(source, signature, [1.0])


@pytest.mark.parametrize(
    "returncode, answer, expected",
    [
        (-9, b"", r"was killed \(SIGKILL\), most likely for lack of memory: pick a packaging.instance_type"),
        (1, b"", r"failed \(exit code 1\) without an answer: the traceback above"),
        (0, b"[1, 2]", r"failed \(exit code 0\) without an answer"),
    ],
)
def test_a_child_that_ends_without_an_answer_is_one_line(returncode, answer, expected):
    with pytest.raises(PackagingError, match=expected):
        model_run._reply(returncode, answer, None)


def test_the_child_answers_outputs_and_errors_as_the_job_did_in_process(text_model):
    signature = read_info(str(text_model)).signatures["scale"]
    outputs = model_run.load_and_run(str(text_model), signature, [[1.0, 2.0]])
    assert outputs == {"scaled": {"shape": [1, 2], "values": [[3.0, 6.0]]}}
    with pytest.raises(PackagingError, match=r"^Sample input names \['nope'\] are not inputs of 'scale' \(values\)\.$"):
        model_run.load_and_run(str(text_model), signature, {"nope": [1]})


def test_a_job_killed_outright_takes_the_model_with_it_even_during_tensorflows_import(tmp_path):
    # SIGKILL (out of memory) reaches the job before the child has imported TensorFlow.
    source = misbehaving_model(str(tmp_path / "hang"), "hang")
    job = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from packager import model_run; from packager.savedmodel import read_info; "
            "s = sys.argv[1]; model_run.load_and_run(s, read_info(s).signatures['serving_default'], [1.0])",
            source,
        ],
        cwd=JOB_DIR,
    )
    deadline = time.monotonic() + 30
    while not model_runs(job.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (child,) = model_runs(job.pid)
    job.kill()
    job.wait()
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child}"), "the model ran on without its job"
