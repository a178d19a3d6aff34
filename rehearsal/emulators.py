"""The rehearsal's AWS: emulators on loopback ports, started and always stopped.

- moto's server: the SageMaker control plane (and sagemaker-runtime);
- the rehearsal's SageMaker (`rehearsal/sagemaker.py`) in front of moto: real
  training jobs through the toolkit, and UpdateEndpoint;
- ministack, launched with SageMaker resource types for its CloudFormation
  (`rehearsal/ministack_sagemaker.py`): CloudFormation, S3, IAM, STS, KMS,
  Lambda (handlers run as local processes), Step Functions, CloudWatch, SNS.

`user_env` is what a user's shell needs to run the README's commands against
them: the endpoints and throwaway credentials, nothing else.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import botocore.session

from rehearsal.sagemaker import SageMaker

ROOT = pathlib.Path(__file__).resolve().parent.parent
EMULATORS_VENV = ROOT / ".venv-emulators"
REGION = "us-east-1"
ACCOUNT = "000000000000"  # ministack's account for credentials that are not an account id
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "rehearsal", "AWS_SECRET_ACCESS_KEY": "rehearsal"}
# The Provider framework polls every 30 s; the emulated Step Functions waits a tenth.
_WAIT_SCALE = "0.1"


class EmulatorFailed(RuntimeError):
    """An emulator did not start."""


@dataclass
class Emulators:
    ministack_url: str
    moto_url: str
    sagemaker: SageMaker

    @property
    def user_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.ministack_url,
            "AWS_ENDPOINT_URL_SAGEMAKER": self.sagemaker.url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.sagemaker.url,
            **CREDENTIALS,
        }

    def client(self, service: str):
        """A client of the emulated service, as the user's tools reach it."""
        return _client(service, self.sagemaker.url if service == "sagemaker" else self.ministack_url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Process:
    """An emulator process with its log file, started on `port`, or on a free port
    (retried when another process takes it between the probe and the bind)."""

    def __init__(
        self,
        name: str,
        command: Callable[[int], list[str]],
        env: Callable[[int], dict[str, str]],
        health: str,
        log: pathlib.Path,
        port: int | None = None,
    ) -> None:
        for _ in range(1 if port else 3):
            self.port = port or free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.log = log.open("w")
            self.process = subprocess.Popen(
                command(self.port),
                env=env(self.port),
                stdout=self.log,
                stderr=subprocess.STDOUT,
                cwd=log.parent,
                start_new_session=True,
            )
            if self._up(f"{self.url}{health}"):
                return
            tail = log.read_text()[-2000:]
            self.stop()
            if "in use" not in tail:
                raise EmulatorFailed(f"{name} did not start; its log ends:\n{tail}")
        raise EmulatorFailed(f"{name} found no free port in three tries")

    def _up(self, url: str, seconds: float = 60) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                return True
            except OSError:
                time.sleep(0.3)
        return False

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


@contextlib.contextmanager
def emulators(workdir: pathlib.Path) -> Iterator[Emulators]:
    """Start everything on free loopback ports; stop it all on the way out."""
    python_bin = EMULATORS_VENV / "bin"
    node_bin = ROOT / "node_modules" / ".bin"
    base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "PATH": f"{node_bin}{os.pathsep}{os.environ['PATH']}",
    }
    started: list[_Process] = []
    try:
        moto = _Process(
            "moto",
            lambda port: [str(python_bin / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            lambda port: {**base_env, "MOTO_ACCOUNT_ID": ACCOUNT},
            "/moto-api/",
            workdir / "moto.log",
        )
        started.append(moto)
        # The stand-in needs ministack's URL (S3, logs) before ministack starts:
        # reserve the port first, then hand it to ministack.
        ministack_port = free_port()
        ministack_url = f"http://127.0.0.1:{ministack_port}"
        job_env = {**base_env, "AWS_ENDPOINT_URL": ministack_url, "AWS_REGION": REGION, **CREDENTIALS}
        with SageMaker(moto.url, _client, workdir, job_env) as sagemaker:
            ministack = _Process(
                "ministack",
                lambda port: [str(python_bin / "python"), str(ROOT / "rehearsal" / "ministack_sagemaker.py")],
                lambda port: {
                    **base_env,
                    "GATEWAY_PORT": str(port),
                    "BIND_HOST": "127.0.0.1",
                    "IOT_MTLS_ENABLED": "false",
                    "SFN_WAIT_SCALE": _WAIT_SCALE,
                    # The provisioners and the Lambda processes ministack starts
                    # reach SageMaker here.
                    "AWS_ENDPOINT_URL_SAGEMAKER": sagemaker.url,
                    **CREDENTIALS,
                    # The AWS SDK the real Node.js Lambda runtime bundles.
                    "NODE_PATH": str(ROOT / "node_modules"),
                },
                "/_ministack/health",
                workdir / "ministack.log",
                port=ministack_port,
            )
            started.append(ministack)
            yield Emulators(ministack_url, moto.url, sagemaker)
    finally:
        for process in reversed(started):
            process.stop()


def _session():
    # Never the user's AWS profile: the rehearsal talks only to its emulators,
    # and a stale AWS_PROFILE must not matter.
    core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    return boto3.session.Session(
        botocore_session=core,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _client(service: str, url: str):
    return _session().client(service, endpoint_url=url)
