"""A loopback HTTP server that serves archives the way a hub does (tests, benchmark)."""

from __future__ import annotations

import pathlib
import time
from urllib.parse import parse_qs, urlsplit

from tools.loopback import LoopbackServer, QuietHandler


class CutShort(bytes):
    """A body sent whole but announced longer: the connection ends early."""


class HubServer(LoopbackServer):
    """Routes: path -> (status, body bytes or a file to stream); a 3xx status's
    body is the Location it redirects to.

    `?tf-hub-format=compressed` is required for 200s, as a hub answers the
    compressed download only when asked for it.
    """

    def __init__(self, bytes_per_second: float | None = None) -> None:
        """`bytes_per_second` caps file downloads, like a real link would."""
        self.routes: dict[str, tuple[int, bytes | pathlib.Path]] = {}
        self.requests: list[str] = []
        routes, requests = self.routes, self.requests

        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                requests.append(self.path)
                parts = urlsplit(self.path)
                status, body = routes.get(parts.path, (404, b"not found"))
                if status == 200 and parse_qs(parts.query).get("tf-hub-format") != ["compressed"]:
                    status, body = 400, b"ask for ?tf-hub-format=compressed"
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", body.decode())
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if isinstance(body, pathlib.Path):
                    self.send_header("Content-Length", str(body.stat().st_size))
                    self.end_headers()
                    _send_file(body, self.wfile, bytes_per_second)
                else:
                    announced = len(body) * 2 if isinstance(body, CutShort) else len(body)
                    self.send_header("Content-Length", str(announced))
                    self.end_headers()
                    self.wfile.write(body)

        super().__init__(Handler)


def _send_file(path: pathlib.Path, out, bytes_per_second: float | None) -> None:
    start, sent = time.perf_counter(), 0
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            out.write(chunk)
            sent += len(chunk)
            if bytes_per_second:
                ahead = sent / bytes_per_second - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)
