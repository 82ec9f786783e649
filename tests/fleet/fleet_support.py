"""What the fleet tests and bench/bench_fleet.py share: a real redis-server, a sandbox server
that counts its code-5 answers, and "machines" (processes with their own cache, data and
home directories) pointed at both.

Everything listens on 127.0.0.1 only, and every process started here is stopped by the
object that started it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REDIS_SERVER = shutil.which("redis-server")
NO_REDIS = "no redis-server binary on this machine (apt-get install redis-server)"
#: The markers counting_sandbox.py writes to its log for each code-5 answer and for each
#: create_order it lets through.
REFUSAL = "clore-fleet: rate-limited"
CREATE = "clore-fleet: create_order accepted"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (redis-server cannot pick one itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server subprocess on 127.0.0.1 in its own directory, without persistence
    unless ``appendonly`` (then every write is fsynced to its append-only file)."""

    directory: Path
    appendonly: bool = False
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (or start again, on the same port and directory) and wait until it answers."""
        assert REDIS_SERVER is not None, NO_REDIS
        if not self.port:
            self.port = free_port()
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--dir", str(self.directory), "--daemonize", "no"]
        args += ["--logfile", str(self.log_path)]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited: {self.log()}")
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise AssertionError(f"redis-server did not answer: {self.log()}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop it (SIGTERM: with appendonly its data is on disk) and wait for it."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: whatever was not on disk is gone."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class CountingSandbox:
    """``python -m clore.sandbox serve`` (rate limiter on) through counting_sandbox.py, which
    logs one line per code-5 answer the limiter gives."""

    directory: Path
    proc: subprocess.Popen[str] | None = None
    base: str = ""
    demo_key: str = ""
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / "sandbox.log"

    @property
    def root(self) -> str:
        return self.base.removesuffix("/v1")

    def start(self, *extra: str) -> CountingSandbox:
        args = [sys.executable, str(HERE / "counting_sandbox.py"), "serve", "--port", "0"]
        args += ["--db", ":memory:", "--log-level", "warning", *extra]
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=log, text=True, env=clean_env()
            )
        assert self.proc.stdout is not None
        url_line, key_line = self.proc.stdout.readline(), self.proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", url_line)
        if match is None or not key_line.startswith("demo key: "):
            self.stop()
            raise AssertionError(f"unexpected banner {url_line!r}: {self.log()}")
        self.base, self.demo_key = match.group(1), key_line.split(": ", 1)[1].strip()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(self.root + "/_sandbox/info", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"the sandbox did not answer: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def refusals(self) -> int:
        """Code-5 answers the sandbox's rate limiter has given so far."""
        return self.log().count(REFUSAL)

    def creates(self) -> int:
        """create_order calls the limiter let through so far (each is then performed)."""
        return self.log().count(CREATE)

    def control(self, method: str, path: str, **body: Any) -> Any:
        answer = httpx.request(method, f"{self.root}/_sandbox/{path}", json=body or None)
        answer.raise_for_status()
        return answer.json()

    def orders(self) -> list[dict[str, Any]]:
        """The demo user's orders, completed ones too (one request: it counts as one)."""
        answer = httpx.get(
            f"{self.base}/my_orders",
            params={"return_completed": "true"},
            headers={"auth": self.demo_key},
        )
        body = answer.json()
        assert body.get("code") == 0, body
        return list(body["orders"])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()


def clean_env() -> dict[str, str]:
    """The environment without any clore setting (each machine gets its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
    src = str(HERE.parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


@dataclass
class Machine:
    """One simulated machine: its own cache, data, config and home directories."""

    root: Path
    name: str

    def env(self, **settings: str) -> dict[str, str]:
        env = clean_env()
        base = self.root / self.name
        for var, sub in (
            ("CLORE_CACHE_DIR", "cache"),
            ("CLORE_DATA_DIR", "data"),
            ("CLORE_CONFIG_DIR", "config"),
            ("HOME", "home"),
        ):
            (base / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(base / sub)
        env.update(settings)
        return env

    def start(self, *args: str, **settings: str) -> subprocess.Popen[str]:
        """Run fleet_machine.py with ``args`` on this machine (stdout: JSON lines)."""
        log = (self.root / f"{self.name}.log").open("a")
        return subprocess.Popen(
            [sys.executable, str(HERE / "fleet_machine.py"), *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=self.env(**settings),
        )

    def log(self) -> str:
        try:
            return (self.root / f"{self.name}.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def results(proc: subprocess.Popen[str], timeout: float) -> list[dict[str, Any]]:
    """The JSON lines a machine printed, once it has exited (killed after ``timeout``)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
        raise AssertionError(f"machine still running after {timeout} s: {out[-2000:]}") from None
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def wait_until(check: Any, timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something true, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Lines:
    """The JSON lines of a running machine, read by a thread as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.items: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.items.append(json.loads(line))

    def kinds(self) -> list[str]:
        return [item["kind"] for item in self.items]

    def wait_for(self, kind: str, timeout: float) -> dict[str, Any]:
        """The first line of ``kind``, waiting up to ``timeout`` s for it."""

        def seen() -> dict[str, Any] | None:
            return next((item for item in self.items if item["kind"] == kind), None)

        return wait_until(seen, timeout, f"a {kind!r} line (got {self.kinds()})")  # type: ignore[no-any-return]

    def finish(self, timeout: float) -> list[dict[str, Any]]:
        """Every line, once the machine has exited (killed after ``timeout``)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(
                f"machine still running after {timeout} s: {self.kinds()}"
            ) from None
        self._thread.join(timeout=10)
        return self.items
