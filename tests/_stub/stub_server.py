"""A tiny real HTTP server that enforces 1 request/second per key, on 127.0.0.1.

The rule is the sandbox's decision in the API reference: a request is accepted when at
least ``interval`` seconds have passed since the key's last *accepted* request; a
rejected one answers HTTP 429 ``{"code": 5}`` and does not move the window. Used by the
two-process pacing test and ``bench/bench_pacing.py``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Stats:
    """What the stub saw: (monotonic time, key, status) per request."""

    requests: list[tuple[float, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accepted(self) -> int:
        return sum(1 for _, _, status in self.requests if status == 200)

    @property
    def rejected(self) -> int:
        return sum(1 for _, _, status in self.requests if status == 429)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()


class _Handler(BaseHTTPRequestHandler):
    server: _StubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test and bench output clean

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        key = self.headers.get("auth", "")
        status, body = self.server.decide(key, self.path)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, interval: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.interval = interval
        self.stats = Stats()
        self._last: dict[str, float] = {}

    def decide(self, key: str, path: str) -> tuple[int, dict[str, object]]:
        with self.stats.lock:
            now = time.monotonic()
            last = self._last.get(key)
            if self.interval > 0 and last is not None and now - last < self.interval:
                self.stats.requests.append((now, key, 429))
                return 429, {"code": 5}
            self._last[key] = now
            self.stats.requests.append((now, key, 200))
        endpoint = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if endpoint == "wallets":
            return 200, {"wallets": [{"name": "bitcoin", "balance": 1.0}], "code": 0}
        if endpoint == "my_orders":
            return 200, {"orders": [], "code": 0}
        return 200, {"code": 0}


@contextmanager
def serve(interval: float = 1.0) -> Iterator[tuple[str, Stats]]:
    """Run the stub in a thread; yields (base URL ending in /v1, stats)."""
    server = _StubServer(interval)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/v1", server.stats
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
