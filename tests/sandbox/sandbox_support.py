"""What the sandbox tests share besides fixtures: the small market, and a sandbox server
as a real subprocess on 127.0.0.1 whose stderr log a test can read."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BTC_DAY = 0.0864  # 1e-6 BTC per second: billing figures stay readable


def _server(sid: int, owner: int, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": sid,
        "owner": owner,
        "mrl": 24,
        "price": {
            "on_demand": {"bitcoin": BTC_DAY, "CLORE-Blockchain": 500},
            "spot": {"bitcoin": BTC_DAY / 2, "CLORE-Blockchain": 250},
        },
        "rented": False,
        "specs": {"gpu": "2x NVIDIA GeForce RTX 4090", "gpuram": 24, "net": {"cc": "DE"}},
        "reliability": 0.99,
        "allowed_coins": ["bitcoin", "CLORE-Blockchain"],
        "rating": {"avg": 5, "cnt": 3},
        "cuda_version": "12.4",
    }
    record.update(extra)
    return record


SMALL_MARKET = {
    "servers": [
        _server(1, 10),
        _server(2, 10, allowed_coins=["CLORE-Blockchain"]),
        _server(3, 11, rented=True),
        _server(4, 11),
        _server(5, 11, mrl=1),
        _server(6, 12),
        _server(7, 12),
        _server(8, 12, allowed_coins=["bitcoin"]),
    ],
    "my_servers": [],
    "code": 0,
}


@dataclass
class LiveServer:
    """A ``python -m clore.sandbox serve`` subprocess on 127.0.0.1; its stderr goes to a file."""

    proc: subprocess.Popen[str]
    base: str
    demo_key: str
    log_path: Path

    @property
    def root(self) -> str:
        return self.base.removesuffix("/v1")

    def log(self) -> str:
        """Everything the server wrote to stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def start_live_server(
    prefix: Path, seed: Path, *extra: str, env: dict[str, str] | None = None
) -> LiveServer:
    """Start a server on port 0 with its database at ``prefix``.db and its log at
    ``prefix``.log (``seed`` unless ``extra`` has ``--seed``); returns once it answers."""
    args = [sys.executable, "-m", "clore.sandbox", "serve", "--port", "0"]
    args += ["--db", f"{prefix}.db"]
    if "--seed" not in extra:
        args += ["--seed", str(seed)]
    log_path = Path(f"{prefix}.log")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*args, *extra],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **(env or {})},
        )
    assert proc.stdout is not None
    url_line, key_line = proc.stdout.readline(), proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", url_line)
    if match is None or not key_line.startswith("demo key: "):
        proc.kill()
        proc.wait(timeout=15)
        raise AssertionError(f"unexpected banner: {url_line!r} {key_line!r}")
    server = LiveServer(proc, match.group(1), key_line.split(": ", 1)[1].strip(), log_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(server.base + "/marketplace", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.stop()
    raise AssertionError(f"the server did not answer; its log:\n{server.log()}")
