"""Loading the SavedModel with this container's TensorFlow, running a sample, and
checking that the run left the staged files as they were hashed.

`load_and_run` and `run_sample` run the hub model's graph in the process that
calls them: in the job, only `model_run`'s child process does. The checks run
in the job's own process, which never imports TensorFlow."""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

from . import manifest
from .errors import PackagingError
from .savedmodel import Signature


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def check_servable_version(writer: str, serving: str) -> None:
    """TF Serving must be at least as new as the TF that wrote the SavedModel."""
    if writer and version_tuple(writer) > version_tuple(serving):
        raise PackagingError(
            f"The SavedModel was written by TensorFlow {writer}, newer than the serving "
            f"image's {serving}; TF Serving would fail with 'Op type not registered'. "
            "Pick an older model version or a newer serving image."
        )


def load_and_run(root: str, signature: Signature, sample: Any | None) -> dict[str, dict] | None:
    """Load the model; with a sample, call the signature and return each output's
    shape and values (what the smoke test will expect the endpoint to answer)."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(root)
    except Exception as error:  # TF raises many types here; all mean "won't serve"
        hint = (
            " The model needs ops that plain TensorFlow (and so TF Serving) lacks, e.g. "
            "tensorflow_text's; such a model cannot be served by the TF Serving container."
            if "Op type not registered" in str(error)
            else ""
        )
        raise PackagingError(
            f"The model does not load with TensorFlow {tf.__version__}: {_summary(error)}.{hint}"
        ) from error
    if sample is None:
        return None
    outputs = run_sample(loaded, signature, sample)
    return {
        name: {"shape": [int(d) for d in tensor.shape], "values": _plain(tensor.numpy().tolist())}
        for name, tensor in sorted(outputs.items())
    }


def _plain(value: Any) -> Any:
    """JSON's view of a tensor's values: string tensors hold bytes, which TF Serving
    answers as text."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def run_sample(loaded, signature: Signature, sample: Any) -> dict:
    """The signature's output tensors for `sample`, given as TF Serving takes it."""
    import tensorflow as tf

    function = loaded.signatures[signature.key]
    try:
        return function(**_inputs(signature, sample, tf))
    except PackagingError:
        raise
    except Exception as error:
        raise PackagingError(
            f"The sample input does not run through signature {signature.key!r}: {_summary(error)}"
        ) from error


_NODE = re.compile(r"\[\[\{\{node (.+?)\}\}\]\]")


def _summary(error: Exception) -> str:
    """The error in one line: its first, or for an error in the graph, whose first
    line is only "Graph execution error:", the failing op's own message (the line
    above `[[{{node <name>}}]]`), such as a write's "<path>; Permission denied"."""
    lines = [line.strip() for line in str(error).strip().splitlines()]
    if not lines:
        return repr(error)
    if lines[0] == "Graph execution error:":
        for above, line in itertools.pairwise(lines):
            node = _NODE.match(line)
            if node:
                return f"{above} (op {node.group(1)})"
    return lines[0]


def _inputs(signature: Signature, sample: Any, tf) -> dict:
    """TF Serving's two request shapes: a list of instances, or named columns."""
    if isinstance(sample, dict):
        unknown = sorted(set(sample) - set(signature.inputs))
        if unknown:
            raise PackagingError(
                f"Sample input names {unknown} are not inputs of {signature.key!r} "
                f"({', '.join(sorted(signature.inputs))})."
            )
        columns = sample
    elif len(signature.inputs) == 1:
        columns = {next(iter(signature.inputs)): sample}
    else:
        raise PackagingError(
            f"Signature {signature.key!r} takes several inputs "
            f"({', '.join(sorted(signature.inputs))}); give the sample as an object of name to values."
        )
    return {
        name: tf.constant(values, dtype=tf.dtypes.as_dtype(signature.inputs[name].dtype))
        for name, values in columns.items()
    }


def require_untouched(model_dir: str, staging: str, artifact: str, files: list[dict]) -> None:
    """Refuse unless the model folder holds only `staging`, and `artifact` exactly
    `files` (as `manifest.file_digests` gave them before the model ran), byte for byte.

    Loading the model (its initializers) and running the sample ran the hub
    model's graph, and a graph can write files (`tf.io.write_file`). It ran in
    a child process that has exited (`model_run`), so nothing writes after this
    check; as nobody when the job is root (nobody writes here only if the folder
    is open to all), and as the job's user otherwise (`make local`). SageMaker
    uploads the whole model folder as the model artifact (SageMaker API
    Reference, ModelArtifacts), so a file written there, or a hashed one
    rewritten, would be served without the manifest naming it, or unlike what
    was tested. Writes elsewhere do not reach the artifact: the staging
    folder's other parts are deleted, and what lands in /opt/ml/output is
    uploaded apart from the model artifact, which alone the Model is made from.
    """
    strays = _paths(model_dir, skip=staging)
    before = {entry["path"]: entry for entry in files}
    after = {entry["path"]: entry for entry in manifest.file_digests(artifact)}
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    # Empty folders were removed before hashing: one now is new, and a new folder
    # holds either a file (a change above) or, at its bottom, an empty folder.
    changed += [path for path in _paths(artifact) if path.endswith("/")]
    # file_digests skips the manifest's name, which is written next.
    if os.path.lexists(os.path.join(artifact, manifest.MANIFEST_NAME)):
        changed.append(manifest.MANIFEST_NAME)
    if strays or changed:
        raise PackagingError(
            "Loading the model to verify it changed the model folder, so the manifest would not "
            f"match what is uploaded: its graph wrote or removed {', '.join(strays + changed)}. "
            "A model that writes files when it runs would do so when served too: pick another model."
        )


def _paths(root: str, skip: str | None = None) -> list[str]:
    """Every file, and every empty folder (ending in "/"), under `root` but `skip`."""
    found = []
    for folder, names, leaves in os.walk(root):
        names[:] = [name for name in names if os.path.join(folder, name) != skip]
        if folder != root and not names and not leaves:
            found.append(os.path.relpath(folder, root) + "/")
        found += [os.path.relpath(os.path.join(folder, leaf), root) for leaf in leaves]
    return sorted(path.replace(os.sep, "/") for path in found)
