"""Sandbox throughput on loopback, beside a bare Starlette hello-world measured in the same run.

Starts ``python -m clore.sandbox serve --no-rate-limit`` (seeded, file database) and a
hello-world Starlette app under the same uvicorn, each in its own process, then drives
each with the same keep-alive HTTP/1.1 load from this process (a minimal asyncio client,
so the load generator is not what is measured) and prints requests/s, p50/p99 latency,
the ratios to hello-world, and the resident memory of the sandbox server.

Goals: ``my_orders`` >= 0.5x the hello-world rate; the 2 MB ``marketplace`` >= 100 req/s.

    python bench/bench_sandbox.py [--seconds 6] [--rounds 3] [--connections 16] [--keys 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HELLO_APP = """
import socket, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def hello(request):
    return Response(b'{"code":0}', media_type="application/json")

app = Starlette(routes=[Route("/v1/hello", hello)])
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
sock.listen(2048)
print(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")).run(
    sockets=[sock]
)
"""


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else 0.0


def _start(
    args: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str, list[str]]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{args[:4]} exited before announcing its URL")
        lines.append(line.strip())
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
        if match:
            if "sandbox" in line:
                lines.append(proc.stdout.readline().strip())  # the demo key line
            _wait_ready(match.group(1))
            return proc, match.group(1), lines
    raise RuntimeError("server did not start")


def _wait_ready(base: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(base.removesuffix("/v1") + "/", timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)


def _post(
    base: str, path: str, body: dict[str, object], key: str | None = None
) -> dict[str, object]:
    headers = {"content-type": "application/json"}
    if key:
        headers["auth"] = key
    req = urllib.request.Request(base + path, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer: dict[str, object] = json.loads(resp.read())
        return answer


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _worker(
    host: str, port: int, path: str, keys: list[str], stop: float, out: Result
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    requests = [
        (f"GET {path} HTTP/1.1\r\nhost: {host}\r\nauth: {key}\r\n\r\n").encode() for key in keys
    ]
    i = 0
    try:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            found = re.search(rb"content-length: *(\d+)", head, re.I)
            assert found is not None
            length = int(found.group(1))
            await reader.readexactly(length)
            out.latencies.append(time.perf_counter() - started)
            out.requests += 1
            if status != 200:
                out.errors += 1
    finally:
        writer.close()


async def _load(
    name: str, base: str, path: str, keys: list[str], conns: int, seconds: float
) -> Result:
    match = re.match(r"http://([\d.]+):(\d+)", base)
    assert match is not None
    host, port = match.groups()
    out = Result(name, 0, seconds, [], 0)
    # Warm up (caches, connections) before measuring.
    warm = Result(name, 0, 0.2, [], 0)
    await asyncio.gather(
        *(_worker(host, int(port), path, keys, time.perf_counter() + 0.2, warm) for _ in range(2))
    )
    stop = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(_worker(host, int(port), path, keys[i::conns] or keys, stop, out) for i in range(conns))
    )
    out.seconds = time.perf_counter() - started
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per endpoint, all rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--keys", type=int, default=64)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="clore-bench-") as tmp:
        return _run(args, tmp)


def _run(args: argparse.Namespace, tmp: str) -> int:
    env = {**os.environ, "CLORE_DATA_DIR": tmp}
    started = time.perf_counter()
    sandbox, base, lines = _start(
        [
            sys.executable,
            "-m",
            "clore.sandbox",
            "serve",
            "--port",
            "0",
            "--no-rate-limit",
            # An API load test: the 64 keys' orders would each start a machine mid-run.
            "--no-machines",
            "--db",
            str(Path(tmp) / "bench.db"),
        ],
        env,
    )
    startup = time.perf_counter() - started
    hello, hello_base, _ = _start([sys.executable, "-c", HELLO_APP])
    try:
        rss_seeded = _rss_mb(sandbox.pid)
        # Many keys, each with one running order, so my_orders does real work.
        market = json.loads(urllib.request.urlopen(base + "/marketplace", timeout=30).read())
        free = [
            s["id"]
            for s in market["servers"]
            if not s["rented"] and "bitcoin" in s["allowed_coins"]
        ]
        keys = []
        for i in range(args.keys):
            user = {"name": f"bench{i}", "balances": {"bitcoin": 10}}
            made = _post(base.removesuffix("/v1"), "/_sandbox/users", user)
            key = str(made["api_key"])
            order = {
                "currency": "bitcoin",
                "image": "ubuntu",
                "renting_server": free[i],
                "type": "on-demand",
            }
            assert _post(base, "/create_order", order, key)["code"] == 0
            keys.append(key)

        async def run_all() -> list[Result]:
            # Interleaved rounds, so that a noisy neighbour on the machine weighs on every
            # endpoint alike; each figure is the total over its rounds.
            c, each = args.connections, args.seconds / args.rounds
            plan = [
                ("hello-world", hello_base, "/v1/hello", c),
                ("my_orders", base, "/v1/my_orders", c),
                ("marketplace", base, "/v1/marketplace", max(2, c // 4)),
            ]
            totals = {name: Result(name, 0, 0.0, [], 0) for name, *_ in plan}
            for _ in range(args.rounds):
                for name, url, path, conns in plan:
                    part = await _load(name, url, path, keys, conns, each)
                    total = totals[name]
                    total.requests += part.requests
                    total.seconds += part.seconds
                    total.latencies += part.latencies
                    total.errors += part.errors
            return list(totals.values())

        results = asyncio.run(run_all())
        rss_loaded = _rss_mb(sandbox.pid)
    finally:
        for proc in (sandbox, hello):
            proc.terminate()
            proc.wait(timeout=10)

    hello_rate = results[0].rate
    print(f"sandbox: {lines[0]}  (started and seeded in {startup:.2f} s)")
    print(
        f"load: {args.connections} keep-alive connections, {len(keys)} keys,"
        f" {args.seconds:.0f} s per endpoint in {args.rounds} interleaved rounds, rate limit off"
    )
    print(f"{'endpoint':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'x hello':>10}")
    for r in results:
        ratio = r.rate / hello_rate
        print(
            f"{r.name:<22}{r.rate:>10.0f}{r.pct(0.5):>10.2f}{r.pct(0.99):>10.2f}"
            f"{r.errors:>8}{ratio:>10.2f}"
        )
    my_orders, marketplace = results[1], results[2]
    print(f"my_orders / hello-world = {my_orders.rate / hello_rate:.2f} (goal >= 0.5)")
    print(f"marketplace (2.1 MB) = {marketplace.rate:.0f} req/s (goal >= 100)")
    print(f"sandbox RSS: {rss_seeded:.1f} MB seeded, {rss_loaded:.1f} MB after the load")
    ok = (
        my_orders.rate >= 0.5 * hello_rate
        and marketplace.rate >= 100
        and not any(r.errors for r in results)
    )
    print("goals met" if ok else "GOALS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
