"""Reading a SavedModel without loading it: where it is, what it serves, who wrote it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import PackagingError

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


def find_root(tree: str) -> str:
    """The shallowest folder under `tree` holding a saved_model.pb(txt)."""
    for folder, dirs, files in os.walk(tree):
        dirs.sort()
        if any(name in files for name in SAVED_MODEL_FILES):
            return folder
    raise PackagingError(
        "No SavedModel inside (no saved_model.pb found). TF Serving needs a TF2 SavedModel; "
        "TF1 hub modules and Keras .h5/.keras files are not servable as they are."
    )


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: list[int | None] | None

    def as_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": self.shape}


@dataclass(frozen=True)
class Signature:
    key: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def as_dict(self) -> dict:
        return {
            "inputs": {k: v.as_dict() for k, v in sorted(self.inputs.items())},
            "outputs": {k: v.as_dict() for k, v in sorted(self.outputs.items())},
        }


@dataclass(frozen=True)
class SavedModelInfo:
    tensorflow_version: str
    signatures: dict[str, Signature]


def read_info(root: str) -> SavedModelInfo:
    """Parse the SavedModel proto for its signatures and writer's TF version."""
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    binary = os.path.join(root, "saved_model.pb")
    try:
        if os.path.exists(binary):
            with open(binary, "rb") as handle:
                proto.ParseFromString(handle.read())
        else:
            with open(os.path.join(root, "saved_model.pbtxt")) as handle:
                text_format.Parse(handle.read(), proto)
    except Exception as error:  # protobuf raises its own DecodeError family
        raise PackagingError(f"saved_model.pb is unreadable ({error}); the archive is corrupt.") from error
    if not proto.meta_graphs:
        raise PackagingError("The SavedModel has no MetaGraph; it cannot be served.")
    meta = proto.meta_graphs[0]

    def spec(info) -> TensorSpec:
        shape = None
        if not info.tensor_shape.unknown_rank:
            shape = [d.size if d.size >= 0 else None for d in info.tensor_shape.dim]
        return TensorSpec(info.name, tf.dtypes.as_dtype(info.dtype).name, shape)

    signatures = {
        key: Signature(
            key,
            {k: spec(v) for k, v in sig.inputs.items()},
            {k: spec(v) for k, v in sig.outputs.items()},
        )
        for key, sig in meta.signature_def.items()
        if not key.startswith("__")
    }
    return SavedModelInfo(meta.meta_info_def.tensorflow_version, signatures)


def require_signature(info: SavedModelInfo, key: str) -> Signature:
    if key not in info.signatures:
        available = ", ".join(sorted(info.signatures)) or "none"
        raise PackagingError(
            f"The model has no signature {key!r} to serve (it has: {available}). Pass "
            "--signature with one of those, or pick a model exported with serving signatures."
        )
    return info.signatures[key]
