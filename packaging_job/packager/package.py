"""The packaging run: fetch, locate, inspect, verify, then publish atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import IO, Any, cast

from . import archive, manifest, model_run, savedmodel, source, verify
from .contract import DEFAULT_SIGNATURE
from .errors import PackagingError
from .inference_code import CODE_DIR, add_inference_code
from .manifest import MANIFEST_NAME

# Frozen: one instance serves as every call's default.
DEFAULT_LIMITS = archive.Limits()


def package(
    handle: str,
    model_dir: str,
    model_name: str,
    model_version: int,
    *,
    signature: str = DEFAULT_SIGNATURE,
    sample_input: Any | None = None,
    verify_load: bool = False,
    serving_tf_version: str | None = None,
    inference_code: str | None = None,
    hub_sha256: str | None = None,
    limits: archive.Limits = DEFAULT_LIMITS,
    s3_client=None,
    log: Callable[[str], None] = print,
) -> dict:
    """Write `<model_dir>/<name>/<version>/`, `manifest.json` and, if given,
    `code/inference.py`.

    Everything is assembled in a staging folder and moved into `model_dir` at
    the end, so on any failure nothing is left but what was there before. A
    TF2 hub model is already a SavedModel: its files are moved into place as
    they are, never deserialized and saved again.
    """
    resolved = source.resolve(handle)
    if hub_sha256 and not resolved.is_archive:
        raise PackagingError(f"model.hub_sha256 pins an archive, but {handle} is a folder: pin an archive's handle.")
    entries = [model_name, MANIFEST_NAME] + ([CODE_DIR] if inference_code else [])
    # Nothing but what this run writes may be there: SageMaker uploads the whole folder.
    taken = sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else []
    if taken:
        raise PackagingError(f"{model_dir} already holds {taken}; the model directory must start empty.")
    os.makedirs(model_dir, exist_ok=True)
    # Staging inside model_dir keeps the final moves same-filesystem renames.
    staging = tempfile.mkdtemp(prefix=".staging-", dir=model_dir)
    artifact = os.path.join(staging, "artifact")
    try:
        fetched = os.path.join(staging, "source")
        os.makedirs(fetched)
        log(f"Fetching {resolved.url}")
        if resolved.is_archive:
            with source.open_archive(resolved, s3_client) as stream:
                pinned = source.Pinned(stream)
                archive.extract(cast(IO[bytes], _Progress(pinned, log)), fetched, resolved.url, limits)
                if hub_sha256:
                    pinned.check(hub_sha256, resolved.url)
                    log(f"Archive sha256 matches the pin {hub_sha256[:12]}")
        else:
            source.copy_tree(resolved, fetched, limits, s3_client)
        root = savedmodel.find_root(fetched)
        info = savedmodel.read_info(root)
        served = savedmodel.require_signature(info, signature)
        if serving_tf_version:
            verify.check_servable_version(info.tensorflow_version, serving_tf_version)
        version_dir = os.path.join(artifact, model_name, str(model_version))
        os.makedirs(os.path.dirname(version_dir))
        os.rename(root, version_dir)
        if inference_code:
            add_inference_code(inference_code, artifact)
        _remove_empty_folders(artifact)
        # Hashed before the model runs, and again after: what a run wrote or
        # rewrote is then refused, so what is published is what was tested.
        log("Hashing files")
        files = manifest.file_digests(artifact)
        outputs = None
        if verify_load or sample_input is not None:
            # The version folder as TF Serving will load it, in a child process
            # that has exited (with every thread the model started) by the time
            # the files are checked; as user nobody when the job is root.
            log("Loading the model to verify it")
            outputs = model_run.load_and_run(version_dir, served, sample_input)
            log("Checking that the run left the files as hashed")
            verify.require_untouched(model_dir, staging, artifact, files)
        record = {
            "source_handle": handle,
            "resolved_url": resolved.url,
            "model_name": model_name,
            "model_version": model_version,
            "tensorflow_version": info.tensorflow_version,
            "signature": signature,
            "signatures": {k: s.as_dict() for k, s in sorted(info.signatures.items())},
            "sample_input": sample_input,
            "sample_output_shapes": {k: o["shape"] for k, o in outputs.items()} if outputs else None,
            # This TensorFlow's answer to the sample: the smoke test expects the
            # endpoint's to match it within a tolerance.
            "sample_output": {k: o["values"] for k, o in outputs.items()} if outputs else None,
            "source_sha256": hub_sha256,
            "total_bytes": sum(entry["size"] for entry in files),
            "digest_version": manifest.DIGEST_VERSION,
            "tree_digest": manifest.tree_digest(files),
            # Every served file, named from the artifact's root.
            "files": files,
        }
        with open(os.path.join(artifact, MANIFEST_NAME), "w") as handle_:
            json.dump(record, handle_, indent=2, sort_keys=True)
        for name in entries:
            os.rename(os.path.join(artifact, name), os.path.join(model_dir, name))
        log(f"Packaged {model_name}/{model_version}: {record['total_bytes']} bytes, tree {record['tree_digest'][:12]}")
        return record
    except BaseException:
        # The folder started empty: all in it but the staging folder (removed
        # below) was published by this run, or written by the model's sample run.
        for name in set(os.listdir(model_dir)) - {os.path.basename(staging)}:
            path = os.path.join(model_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_empty_folders(root: str) -> None:
    """An empty folder (a SavedModel's empty `assets/`) could reach S3 as a zero-byte
    "folder" object, which breaks an uncompressed model's deployment (S3ModelDataSource)."""
    # Bottom-up, so a folder whose only content was empty folders goes too.
    for folder, _, _ in os.walk(root, topdown=False):
        if folder != root and not os.listdir(folder):
            os.rmdir(folder)


class _Progress:
    """A read-through wrapper that logs every 64 MiB, so a long download shows life."""

    _EVERY = 64 << 20

    def __init__(self, stream, log: Callable[[str], None]) -> None:
        self._stream, self._log = stream, log
        self._read = self._next = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._read += len(chunk)
        if self._read >= self._next + self._EVERY:
            self._next = self._read - self._read % self._EVERY
            self._log(f"  {self._read >> 20} MiB received")
        return chunk
