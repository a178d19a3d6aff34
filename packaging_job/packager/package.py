"""The packaging run: fetch, locate, inspect, verify, then publish atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any, Callable

from . import archive, manifest, savedmodel, source, verify
from .errors import PackagingError

MANIFEST_NAME = "manifest.json"


def package(
    handle: str,
    model_dir: str,
    model_name: str,
    model_version: int,
    *,
    signature: str = "serving_default",
    sample_input: Any | None = None,
    verify_load: bool = False,
    serving_tf_version: str | None = None,
    s3_client=None,
    log: Callable[[str], None] = print,
) -> dict:
    """Write `<model_dir>/<name>/<version>/` and `<model_dir>/manifest.json`.

    On any failure nothing is left under `model_dir` but what was there before.
    A TF2 hub model is already a SavedModel: its files are moved into place as
    they are, never deserialized and saved again.
    """
    resolved = source.resolve(handle)
    target = os.path.join(model_dir, model_name, str(model_version))
    if os.path.exists(target):
        raise PackagingError(f"{target} already exists; the model directory must start empty.")
    os.makedirs(model_dir, exist_ok=True)
    # Staging inside model_dir keeps the final move a same-filesystem rename.
    staging = tempfile.mkdtemp(prefix=".staging-", dir=model_dir)
    published = False
    try:
        fetched = os.path.join(staging, "source")
        os.makedirs(fetched)
        log(f"Fetching {resolved.url}")
        if resolved.is_archive:
            with source.open_archive(resolved, s3_client) as stream:
                archive.extract(stream, fetched, resolved.url)
        else:
            source.copy_tree(resolved, fetched, s3_client)
        root = savedmodel.find_root(fetched)
        info = savedmodel.read_info(root)
        served = savedmodel.require_signature(info, signature)
        if serving_tf_version:
            verify.check_servable_version(info.tensorflow_version, serving_tf_version)
        output_shapes = None
        if verify_load or sample_input is not None:
            log("Loading the model to verify it")
            output_shapes = verify.load_and_run(root, served, sample_input)
        log("Hashing files")
        files = manifest.file_digests(root)
        record = {
            "source_handle": handle,
            "resolved_url": resolved.url,
            "model_name": model_name,
            "model_version": model_version,
            "tensorflow_version": info.tensorflow_version,
            "signature": signature,
            "signatures": {k: s.as_dict() for k, s in sorted(info.signatures.items())},
            "sample_output_shapes": output_shapes,
            "total_bytes": sum(entry["size"] for entry in files),
            "tree_digest": manifest.tree_digest(files),
            "files": files,
        }
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.rename(root, target)
        published = True
        manifest_path = os.path.join(model_dir, MANIFEST_NAME)
        with open(manifest_path + ".tmp", "w") as handle_:
            json.dump(record, handle_, indent=2, sort_keys=True)
        os.replace(manifest_path + ".tmp", manifest_path)
        log(f"Packaged {model_name}/{model_version}: {record['total_bytes']} bytes, tree {record['tree_digest'][:12]}")
        return record
    except BaseException:
        if published:
            shutil.rmtree(target, ignore_errors=True)
        _remove_empty(os.path.join(model_dir, model_name))
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass
