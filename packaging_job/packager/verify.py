"""Loading the SavedModel with this container's TensorFlow and running a sample."""

from __future__ import annotations

from typing import Any

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
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        hint = (
            " The model needs ops that plain TensorFlow (and so TF Serving) lacks, e.g. "
            "tensorflow_text's; such a model cannot be served by the TF Serving container."
            if "Op type not registered" in str(error)
            else ""
        )
        raise PackagingError(
            f"The model does not load with TensorFlow {tf.__version__}: {first_line}.{hint}"
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
            f"The sample input does not run through signature {signature.key!r}: {str(error).strip().splitlines()[0]}"
        ) from error


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
