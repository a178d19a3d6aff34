"""How the job marks its own lines among the toolkit's and TensorFlow's output.

`make local` shows only these lines, and a deploy that follows the job's logs
picks them out the same way; a failure's line carries `FAILED` after the mark.
"""

from __future__ import annotations

MARK = "[packaging] "
FAILED = "failed: "


def line(message: str) -> str:
    return f"{MARK}{message}"


def message(text: str) -> str | None:
    """The job's own message in an output line, or None for anything else."""
    return text[len(MARK) :].rstrip() if text.startswith(MARK) else None


def is_failure(message_: str) -> bool:
    return message_.startswith(FAILED)
