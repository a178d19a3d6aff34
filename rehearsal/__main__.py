"""`make rehearse`: run the scenario; one line if a check fails."""

from __future__ import annotations

import os
import signal
import sys

from rehearsal.emulators import EmulatorFailed
from rehearsal.scenario import RehearsalFailed, rehearse
from tools.cli import UserError, run


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # A CI timeout or Ctrl-C still runs the `finally` that stops the emulators.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        steps, _ = rehearse()
    except (RehearsalFailed, EmulatorFailed, TimeoutError) as failure:
        raise UserError(f"REHEARSAL FAILED: {failure}") from failure
    print(f"rehearsal passed: {len(steps)} checks ({', '.join(steps)})")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
