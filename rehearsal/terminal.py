"""Running a user's command as a user would: in a terminal, answering its prompts.

`make deploy` asks before IAM broadens (`--require-approval broadening`), and
the CDK CLI refuses to ask without a terminal; so each command runs on a
pseudo-terminal, and a prompt the scenario expects is answered as a person
would answer it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\r")


@dataclass(frozen=True)
class Finished:
    command: str
    returncode: int
    output: str


def run(
    command: list[str], cwd, env: dict[str, str], answers: dict[str, str] | None = None, timeout: float = 1200
) -> Finished:
    """Run `command` on a pseudo-terminal; write `answers[prompt]` each time `prompt` shows."""
    answers = answers or {}
    primary, secondary = pty.openpty()
    # 50 rows of 200 columns: the CLI's tables stay readable in the output.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    received, answered = b"", {prompt: 0 for prompt in answers}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 1)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the command closed the terminal
                    break
                if not chunk:
                    break
                received += chunk
                text = _ANSI.sub("", received.decode(errors="replace"))
                for prompt, answer in answers.items():
                    if text.count(prompt) > answered[prompt]:
                        answered[prompt] += 1
                        os.write(primary, answer.encode())
            elif process.poll() is not None:
                break
        else:
            os.killpg(process.pid, 9)
            seen = _ANSI.sub("", received.decode(errors="replace"))[-3000:]
            raise TimeoutError(f"{' '.join(command)} ran longer than {timeout:.0f} s; its output ends:\n{seen}")
    finally:
        os.close(primary)
    returncode = process.wait()
    return Finished(" ".join(command), returncode, _ANSI.sub("", received.decode(errors="replace")))
