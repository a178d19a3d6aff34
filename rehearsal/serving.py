"""What a rehearsed endpoint answers: the Model's own artifact, served with TensorFlow.

moto's InvokeEndpoint returns canned bodies, so `make smoke` could prove
nothing. Here an endpoint's model data (ModelDataUrl or ModelDataSource, from
the emulated S3) is laid out as in /opt/ml/model, the SavedModel found the way
the TF Serving container finds it (`saved_model.pb` under an all-digits
version folder, the model named by SAGEMAKER_TFS_DEFAULT_MODEL_NAME), loaded,
and a request in TF Serving's REST predict format run through its
`serving_default` signature. This is TensorFlow, not the TF Serving container:
what is checked is the artifact and the request and response formats.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
from typing import Any

from delivery import artifact_forms as forms
from packaging_job.packager.contract import DEFAULT_SIGNATURE


def model_data(model: dict) -> str:
    container = model.get("PrimaryContainer") or {}
    if container.get("ModelDataUrl"):
        return container["ModelDataUrl"]
    return container["ModelDataSource"]["S3DataSource"]["S3Uri"]


def servable(root: pathlib.Path, model_name: str | None) -> pathlib.Path:
    """The version folder TF Serving would serve: `<name>/<digits>/saved_model.pb`."""
    found = sorted(path.parent for path in root.rglob("saved_model.pb") if path.parent.name.isdigit())
    if model_name:
        found = [path for path in found if path.parent.name == model_name]
    if not found:
        raise ValueError(f"no <name>/<version>/saved_model.pb under the model data ({model_name or 'any name'})")
    return max(found, key=lambda path: int(path.name))


class Runtime:
    """Loaded models by artifact URI, each laid out once under `workdir`."""

    def __init__(self, s3, workdir: pathlib.Path) -> None:
        self.s3, self.workdir = s3, workdir
        self.loaded: dict[str, Any] = {}

    def predict(self, model: dict, request: dict) -> dict:
        uri = model_data(model)
        environment = (model.get("PrimaryContainer") or {}).get("Environment") or {}
        key = f"{uri}|{environment.get('SAGEMAKER_TFS_DEFAULT_MODEL_NAME')}"
        if key not in self.loaded:
            self.loaded[key] = self._load(uri, environment.get("SAGEMAKER_TFS_DEFAULT_MODEL_NAME"))
        return run(self.loaded[key].signatures[DEFAULT_SIGNATURE], request)

    def _load(self, uri: str, model_name: str | None):
        import tensorflow as tf

        root = self.workdir / hashlib.sha256(uri.encode()).hexdigest()[:16]
        shutil.rmtree(root, ignore_errors=True)
        for file in forms.files(self.s3, uri):
            target = root / file.path
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                shutil.copyfileobj(file.stream, out)
        return tf.saved_model.load(os.fspath(servable(root, model_name)))


def run(function, request: dict) -> dict:
    """TF Serving's REST predict: rows (`instances` -> `predictions`) or columns
    (`inputs` -> `outputs`); one input or output is given bare, several by name."""
    import tensorflow as tf

    specs = function.structured_input_signature[1]
    if "instances" in request:
        rows = request["instances"]
        if rows and isinstance(rows[0], dict):
            columns = {name: [row[name] for row in rows] for name in specs}
        else:
            columns = {next(iter(specs)): rows}
    else:
        given = request["inputs"]
        columns = given if isinstance(given, dict) else {next(iter(specs)): given}
    tensors = {name: tf.constant(values, dtype=specs[name].dtype) for name, values in columns.items()}
    outputs = {name: _plain(tensor.numpy().tolist()) for name, tensor in function(**tensors).items()}
    if "instances" in request:
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values()))}
        count = len(next(iter(outputs.values())))
        return {"predictions": [{name: values[i] for name, values in outputs.items()} for i in range(count)]}
    return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.decode() if isinstance(value, bytes) else value
