"""The job as the training container runs it: the real SageMaker training toolkit."""

from __future__ import annotations

import json

import tensorflow as tf

from tools.local_job import run_toolkit, write_layout


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
