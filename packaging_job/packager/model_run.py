"""Running the hub model's graph (its load and the sample) in a child process.

The graph is the hub's code, not ours: its ops can write files
(`tf.io.write_file`), from the call itself or from a thread it leaves running
(a tf.data prefetch under a `shared_name` outlives the call, the loaded
object and `gc.collect()`). So `load_and_run` runs it in a child process and
returns only once that process has exited, all its threads with it: nothing
of the model runs while the job hashes, checks and publishes the files. When
the job is root (SageMaker's TensorFlow training containers set no other
USER), the child runs the model as user nobody, which can write neither the
model folder, nor the job's code, nor site-packages; it reads the model
through a folder handle opened before the switch. What it answers comes back
as JSON (never pickle: the child ran the hub's code), and a PackagingError
raised there is raised here with the same message.

Run as `python -m <package>.model_run` by `load_and_run`, never by hand.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from typing import Any

from . import verify
from .errors import PackagingError
from .savedmodel import Signature

# A load and sample that take longer are a model that hangs, not a slow one
# (a 40 GB model, the largest `max-model-mb` admits, loads from disk in minutes).
TIME_LIMIT_SECONDS = 15 * 60
NOBODY = 65534  # the uid and gid of nobody/nogroup in the Debian/Ubuntu-based training images


def load_and_run(
    version_dir: str, signature: Signature, sample: Any | None, timeout: float = TIME_LIMIT_SECONDS
) -> dict[str, dict] | None:
    """`verify.load_and_run(version_dir, signature, sample)`, in a child process
    that has exited when this returns or raises."""
    user = _run_as()
    # The child's HOME and TMPDIR: what TensorFlow writes there goes with it.
    scratch = tempfile.mkdtemp(prefix="packager-model-run-")
    try:
        if user is not None:
            os.chown(scratch, user, user)
            _make_readable(version_dir)
        request = {
            "root": version_dir,
            "user": user,
            "parent": os.getpid(),
            "signature": {"key": signature.key, **signature.as_dict()},
            "sample": sample,
        }
        path = [_import_root(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        child = subprocess.Popen(
            [sys.executable, "-m", f"{__package__}.model_run"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,  # the answer; the child's other output goes to stderr, the job's log
            # "/": no folder the model may write is on the child's import path.
            cwd="/",
            env={**os.environ, "HOME": scratch, "TMPDIR": scratch, "PYTHONPATH": os.pathsep.join(path)},
        )
        try:
            answer, _ = child.communicate(json.dumps(request).encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PackagingError(
                f"Loading the model and running the sample took over {timeout:g} seconds and was "
                "stopped: the model hangs on this input; check the sample, or pick another model."
            ) from None
        finally:
            # A stop (SIGTERM), a timeout or any error here: the model must not run on.
            child.kill()
            child.wait()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _reply(child.returncode, answer, user)


def _run_as() -> int | None:
    """The user the model runs as: nobody when the job is root, else the job's own."""
    return NOBODY if os.geteuid() == 0 else None


def _make_readable(tree: str) -> None:
    """Let any user read the staged SavedModel: an archive's files may come as 0600
    and its folders as 0700. Writing stays the owner's (root's): the `data`
    filter drops group and other write, and this job's own copies get none."""
    for folder, _, files in os.walk(tree):
        os.chmod(folder, os.stat(folder).st_mode | 0o555)
        for name in files:
            path = os.path.join(folder, name)
            os.chmod(path, os.stat(path).st_mode | 0o444)


def _import_root() -> str:
    """The folder `python -m` finds this package in: `packager`'s parent inside the
    training container, the repository's root when imported as `packaging_job.packager`."""
    root = os.path.dirname(os.path.abspath(__file__))
    for _ in __package__.split("."):
        root = os.path.dirname(root)
    return root


def _reply(returncode: int, answer: bytes, user: int | None) -> dict[str, dict] | None:
    """The child's outputs, or its PackagingError raised again, or why it gave neither."""
    if returncode < 0:
        killed = signal.Signals(-returncode).name
        if killed == "SIGKILL":
            raise PackagingError(
                "Loading the model and running the sample was killed (SIGKILL), most likely for lack of "
                "memory: pick a packaging.instance_type with more memory."
            )
        raise PackagingError(
            f"Loading the model and running the sample crashed ({killed}): TensorFlow's output above, "
            "in the job's log, says where; a model that crashes TensorFlow cannot be served by it either."
        )
    try:
        reply = json.loads(answer) if returncode == 0 else None
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or not reply.keys() & {"outputs", "error"}:
        raise PackagingError(
            f"Loading the model and running the sample failed (exit code {returncode}) without an "
            "answer: the traceback above, in the job's log, says why."
        )
    if "error" in reply:
        error = str(reply["error"])
        if user is not None and "Permission denied" in error:
            error += (
                f" The model ran as user nobody ({user}), which may write no file of the job's: "
                "a model that writes files when it runs is refused."
            )
        raise PackagingError(error)
    return reply["outputs"]


def _die_with(parent: int) -> None:
    """Have the kernel end this process when the job that started it dies
    (prctl(2), PR_SET_PDEATHSIG): a job killed outright (out of memory) takes the
    model with it. Set first thing, before TensorFlow's seconds-long import; a
    parent already gone by then (its pid is not ours any more) ends it here."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1  # <linux/prctl.h>
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _child() -> None:
    """The child's side: load and run as the request says, answer on stdout, exit."""
    # The parent ends this process (SIGKILL) on a stop; a SIGTERM to the whole
    # process group must not end it first and look like a crash.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    request = json.load(sys.stdin)
    _die_with(request["parent"])
    # stdout carries the answer alone: whatever else writes to it (the model's
    # own prints) goes to stderr.
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    root = os.open(request["root"], os.O_RDONLY | os.O_DIRECTORY)
    # TensorFlow is imported before the switch to nobody: the import runs none of
    # the model's code, and the interpreter's own files may be out of nobody's
    # reach (a Python installed under /root).
    import tensorflow  # noqa: F401

    model = request["root"]
    if request["user"] is not None:
        os.setgroups([])
        os.setgid(request["user"])
        os.setuid(request["user"])
        # Again: the switch clears it.
        _die_with(request["parent"])
        # The folder through its handle (Linux, where the job runs as root): the way
        # to it may be closed to nobody (a staging folder is 0700), the folder itself is not.
        model = f"/proc/self/fd/{root}"
    signature = request["signature"]
    try:
        outputs = verify.load_and_run(model, Signature.from_dict(signature.pop("key"), signature), request["sample"])
        reply: dict[str, Any] = {"outputs": outputs}
    except PackagingError as error:
        reply = {"error": str(error)}
    with answer:
        json.dump(reply, answer)


if __name__ == "__main__":
    # os._exit: leave at once, with every thread the model started, rather than
    # wait on them in the interpreter's shutdown.
    try:
        _child()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stderr.flush()
    os._exit(0)
