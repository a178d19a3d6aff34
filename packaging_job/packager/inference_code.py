"""Optional pre/post-processing for the TF Serving container: `code/inference.py`."""

from __future__ import annotations

import ast
import os
import shutil

from .errors import PackagingError

CODE_DIR = "code"
# The container calls `handler`, or `input_handler` and `output_handler`.
_HANDLER_SETS = ({"handler"}, {"input_handler", "output_handler"})


def add_inference_code(source_path: str, artifact_dir: str) -> str:
    """Check `source_path` and copy it to `<artifact_dir>/code/inference.py`."""
    if not os.path.isfile(source_path):
        raise PackagingError(f"Inference code {source_path!r} does not exist.")
    with open(source_path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        tree = ast.parse(text, filename=source_path)
    except SyntaxError as error:
        raise PackagingError(
            f"Inference code {source_path!r} does not compile: {error.msg} (line {error.lineno})."
        ) from error
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    if not any(names <= defined for names in _HANDLER_SETS):
        raise PackagingError(
            f"Inference code {source_path!r} defines neither handler() nor both "
            "input_handler() and output_handler(); the TF Serving container needs one of them."
        )
    target = os.path.join(artifact_dir, CODE_DIR, "inference.py")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(source_path, target)
    return target
