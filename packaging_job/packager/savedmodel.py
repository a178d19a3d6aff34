"""Reading a SavedModel without loading it: where it is, what it serves, who wrote it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import PackagingError

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
SERVE_TAG = "serve"


def find_root(tree: str) -> str:
    """The one folder under `tree` holding a saved_model.pb(txt).

    A hub model holds one SavedModel. A second anywhere in the tree, side by
    side or nested among the first's assets, is refused: the SageMaker TF
    Serving container walks the whole model folder and serves every
    `<name>/<digits>/saved_model.pb` it finds (sagemaker-tensorflow-serving-container,
    `tfs_utils.find_models`), so a nested one would be a second model reachable
    through the `tfs-model-name` header, or would stop TF Serving from starting.
    """
    found = sorted((folder, name) for folder, _, files in os.walk(tree) for name in files if name in SAVED_MODEL_FILES)
    folders = {folder for folder, _ in found}
    if not found:
        raise PackagingError(
            "No SavedModel inside (no saved_model.pb found). TF Serving needs a TF2 SavedModel; "
            "TF1 hub modules and Keras .h5/.keras files are not servable as they are."
        )
    if len(folders) > 1:
        names = ", ".join(os.path.relpath(os.path.join(folder, name), tree) for folder, name in found)
        raise PackagingError(
            f"The model holds several SavedModels ({names}); it should hold one. The SageMaker TF "
            "Serving container would serve each of them: remove all but the one to serve."
        )
    return found[0][0]


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

    @classmethod
    def from_dict(cls, key: str, data: dict) -> Signature:
        """`as_dict`'s inverse, for the child process that runs the model (`model_run`)."""
        return cls(
            key,
            {k: TensorSpec(**v) for k, v in data["inputs"].items()},
            {k: TensorSpec(**v) for k, v in data["outputs"].items()},
        )


@dataclass(frozen=True)
class SavedModelInfo:
    tensorflow_version: str
    signatures: dict[str, Signature]


def read_info(root: str) -> SavedModelInfo:
    """Parse saved_model.pb for its signatures and the writer's TF version.

    Importing TensorFlow costs ~650 MB of RSS and seconds; the protobuf
    messages alone cost ~15 MB, so the model is inspected without TF.
    """
    binary = os.path.join(root, "saved_model.pb")
    if not os.path.exists(binary):
        raise PackagingError("Only a binary saved_model.pb is supported; this model has saved_model.pbtxt.")
    proto = _saved_model_message()()
    try:
        with open(binary, "rb") as handle:
            proto.ParseFromString(handle.read())
    except Exception as error:  # protobuf raises its own DecodeError family
        raise PackagingError(f"saved_model.pb is unreadable ({error}); the archive is corrupt.") from error
    # TF Serving loads the MetaGraph tagged exactly "serve" (its default tag set).
    served = [meta for meta in proto.meta_graphs if set(meta.meta_info_def.tags) == {SERVE_TAG}]
    if not served:
        tags = [sorted(meta.meta_info_def.tags) for meta in proto.meta_graphs]
        raise PackagingError(
            f"The SavedModel has no MetaGraph tagged '{SERVE_TAG}' (it has {tags or 'none'}); TF Serving "
            "loads that one, so this model cannot be served as it is."
        )
    meta = served[0]
    signatures = {
        key: Signature(
            key,
            {k: _spec(v) for k, v in sig.inputs.items()},
            {k: _spec(v) for k, v in sig.outputs.items()},
        )
        for key, sig in meta.signature_def.items()
        if not key.startswith("__")
    }
    return SavedModelInfo(meta.meta_info_def.tensorflow_version, signatures)


def _spec(info) -> TensorSpec:
    from tensorboard.compat.proto import types_pb2

    shape = None
    if not info.tensor_shape.unknown_rank:
        shape = [d.size if d.size >= 0 else None for d in info.tensor_shape.dim]
    name = types_pb2.DataType.Name(info.dtype).removeprefix("DT_").lower()
    return TensorSpec(info.name, _DTYPE_NAMES.get(name, name), shape)


# TF's dtype names where they differ from the proto enum's.
_DTYPE_NAMES = {"float": "float32", "double": "float64", "half": "float16"}
_MESSAGE = "packager.SavedModel"


def _saved_model_message():
    """TF's `SavedModel` message (wire-compatible), built on tensorboard's copy of
    the MetaGraphDef proto, which TensorFlow's own package depends on."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from tensorboard.compat.proto import meta_graph_pb2

    pool = descriptor_pool.Default()
    try:
        descriptor = pool.FindMessageTypeByName(_MESSAGE)
    except KeyError:
        field = descriptor_pb2.FieldDescriptorProto
        file = descriptor_pb2.FileDescriptorProto(
            name="packager/saved_model.proto",
            package="packager",
            syntax="proto3",
            dependency=[meta_graph_pb2.DESCRIPTOR.name],
        )
        message = file.message_type.add(name="SavedModel")
        message.field.add(
            name="saved_model_schema_version",
            number=1,
            type=field.TYPE_INT64,
            label=field.LABEL_OPTIONAL,
        )
        message.field.add(
            name="meta_graphs",
            number=2,
            type=field.TYPE_MESSAGE,
            label=field.LABEL_REPEATED,
            type_name=f".{meta_graph_pb2.MetaGraphDef.DESCRIPTOR.full_name}",
        )
        pool.Add(file)
        descriptor = pool.FindMessageTypeByName(_MESSAGE)
    return message_factory.GetMessageClass(descriptor)


def require_signature(info: SavedModelInfo, key: str) -> Signature:
    if key not in info.signatures:
        available = ", ".join(sorted(info.signatures)) or "none"
        raise PackagingError(
            f"The model has no signature {key!r} to serve (it has: {available}). Pass "
            "--signature with one of those, or pick a model exported with serving signatures."
        )
    return info.signatures[key]
