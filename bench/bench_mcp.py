"""``clore mcp`` beside its baselines, in one run: start-up, a search call, its size.

1. **Start-up to a served tool listing over stdio.** Each subject is a fresh subprocess
   given ``initialize``, ``notifications/initialized`` and ``tools/list`` on stdin at
   once; the clock stops when the ``tools/list`` answer is read from its stdout. Subjects:
   ``clore mcp`` (a configured key and base URL, never contacted: the listing makes no
   request, and the client is made by the first tool call), ``clore --sandbox mcp`` (the
   embedded sandbox opened too) and, as the floor the SDK itself sets, a minimal server
   of the same SDK (one tool, the low-level ``Server`` over stdio). Beside them
   ``clore --help`` (until it exits) and the SDK's import alone (``import mcp_types,
   mcp.server``, until it prints; any ``mcp.*`` import runs the package's ``__init__``,
   which loads the client, both server APIs and the HTTP stack). Interleaved rounds,
   medians. Goal: ``clore mcp`` <= 3x ``clore --help``; printed too: the SDK's floor and
   what clore adds on top of it. Byte code is cached as in an installed package (a
   private ``PYTHONPYCACHEPREFIX``, filled by a first pass, whatever
   ``PYTHONDONTWRITEBYTECODE`` says): without it every run compiles clore's sources.
2. **A search call over the real capture** (the sandbox seeded with the 3,500-server
   2024 capture, in process, no rate limit): ``search_market`` called through the SDK's
   own MCP client session (memory streams, the handshake era), the listing fetched on
   every call, beside the SDK's ``Clore.marketplace()`` + ``clore.market.select`` (the
   same filters, price order, first 20). Interleaved rounds, best of each. Goal <= 1.3x.
3. **The size of the result** of the 20 cheapest matches, in tokens estimated as
   characters / 4: the text content, the structured content, and the whole result as
   sent (both). Goal: the whole result < 2,000 tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

STARTUP_GOAL = 3.0
SEARCH_GOAL = 1.3
TOKENS_GOAL = 2000
URL = "http://127.0.0.1:9/v1"  # never contacted: listing the tools makes no request
SEARCHES: dict[str, list[str]] = {
    "whole market": [],
    "gpu=4090": ["gpu=4090"],
    "gpus>=2 reliability>=0.9": ["gpus>=2", "reliability>=0.9"],
}

_HANDSHAKE = (
    json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        }
    )
    + "\n"
    + json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
    + "\n"
    + json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
    + "\n"
)

_MINIMAL_SERVER = """\
import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

TOOL = types.Tool(name="echo", input_schema={"type": "object", "properties": {}})


async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[TOOL])


async def main():
    server = Server("minimal", on_list_tools=list_tools)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


anyio.run(main)
"""


def _clore() -> list[str]:
    script = Path(sys.executable).with_name("clore")
    return [str(script)] if script.exists() else [sys.executable, "-m", "clore"]


def _mcp_argv(*global_options: str) -> list[str]:
    """``clore [OPTIONS] mcp``, the command added when cli/_group.py does not list it."""
    from clore.cli._group import COMMANDS

    if "mcp" in COMMANDS:
        return [*_clore(), *global_options, "mcp"]
    code = (
        "import sys\nfrom clore.cli import cli, main\nfrom clore.cli.mcp_cmd import mcp\n"
        "cli.add_command(mcp)\nmain(sys.argv[1:])\n"
    )
    return [sys.executable, "-c", code, *global_options, "mcp"]


def _time_listing(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawning ``argv`` to reading its ``tools/list`` answer."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(_HANDSHAKE)
    process.stdin.flush()
    tools = None
    for line in process.stdout:
        message = json.loads(line)
        if message.get("id") == 2:
            tools = message["result"]["tools"]
            break
    elapsed = time.perf_counter() - started
    process.stdin.close()
    process.wait(timeout=30)
    if not tools:
        raise SystemExit(f"no tool listing from {argv}")
    return elapsed


def _time_line(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawning ``argv`` to reading its first line (not its exit: tearing
    down the SDK's module graph takes a while and no client waits for it)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    process.wait(timeout=30)
    if not line:
        raise SystemExit(f"no output from {argv}")
    return elapsed


def _time_exit(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def startup(rounds: int) -> bool:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ)
        for name in ("CONFIG", "CACHE", "DATA"):
            env[f"CLORE_{name}_DIR"] = str(Path(home) / name.lower())
        env.update(HOME=home, CLORE_API_KEY="bench-key-never-sent", CLORE_BASE_URL=URL)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(home) / "pycache")
        subjects: dict[str, Callable[[], float]] = {
            "clore --help": lambda: _time_exit([*_clore(), "--help"], env),
            "SDK import alone": lambda: _time_line(
                [sys.executable, "-c", "import mcp_types, mcp.server; print(1)"], env
            ),
            "SDK minimal server": lambda: _time_listing(
                [sys.executable, "-c", _MINIMAL_SERVER], env
            ),
            "clore mcp": lambda: _time_listing(_mcp_argv(), env),
            "clore --sandbox mcp": lambda: _time_listing(_mcp_argv("--sandbox"), env),
        }
        for run in subjects.values():  # fill the byte-code cache; seed the embedded sandbox
            run()
        samples: dict[str, list[float]] = {name: [] for name in subjects}
        for _ in range(rounds):
            for name, run in subjects.items():
                samples[name].append(run())
    medians = {name: statistics.median(values) for name, values in samples.items()}
    helped = medians["clore --help"]
    floor = medians["SDK minimal server"]
    print(f"start-up to a served tool listing over stdio, median of {rounds} runs each")
    for name, value in medians.items():
        print(
            f"  {name:<22} {value:7.3f} s   {value / helped:6.2f}x --help   "
            f"{value / floor:5.2f}x SDK"
        )
    ours = medians["clore mcp"]
    ratio = ours / helped
    verdict = "ok" if ratio <= STARTUP_GOAL else "OVER GOAL"
    print(f"clore mcp / clore --help: {ratio:.2f}x (goal <= {STARTUP_GOAL:g}x): {verdict}")
    print(
        f"  the SDK's floor (its minimal server): {floor:.3f} s = {floor / helped:.2f}x --help "
        f"(its import alone {medians['SDK import alone']:.3f} s); clore's part on top: "
        f"{ours - floor:+.3f} s = {(ours - floor) / helped:+.2f}x --help"
    )
    if floor / helped > STARTUP_GOAL:
        print(
            f"  out of reach with this SDK: its minimal server alone is {floor / helped:.1f}x "
            f"clore --help (goal {STARTUP_GOAL:g}x)"
        )
    return ratio <= STARTUP_GOAL


async def search(rounds: int) -> tuple[bool, bool]:
    from mcp import Client

    from clore import Pacing
    from clore.agent import AgentContext, AgentPolicy
    from clore.market import PriceContext, parse_filters, parse_sort, select
    from clore.mcp import build_server
    from clore.rentals import payable
    from clore.sandbox import Sandbox

    with tempfile.TemporaryDirectory() as home:
        for name in ("CONFIG", "CACHE", "DATA"):
            os.environ[f"CLORE_{name}_DIR"] = str(Path(home) / name.lower())
        sandbox = Sandbox(db=":memory:", rate_limit=False, machines="off")
        client = sandbox.client(pacing=Pacing.disabled())
        ctx = AgentContext(client, AgentPolicy(), market_ttl=0.0)
        rates, _ = ctx.rates()
        sort = parse_sort("price")

        def direct(words: list[str]) -> list[Any]:
            price = PriceContext("bitcoin", rates)
            found = select(client.marketplace(), parse_filters(words), price, sort=sort)
            return [s for s in found if payable(s, "bitcoin")][:20]

        worst = 0.0
        sizes: dict[str, tuple[int, int, int]] = {}
        async with Client(build_server(ctx, enforce_every=None), mode="legacy") as session:

            async def tool(words: list[str]) -> Any:
                result = await session.call_tool("search_market", {"filters": words, "limit": 20})
                if result.is_error:
                    raise SystemExit(f"search_market failed: {result.content}")
                return result

            count = len(client.marketplace())
            print(f"\nsearch over the real capture ({count} servers), best of {rounds}")
            for label, words in SEARCHES.items():
                best_tool = best_sdk = float("inf")
                for _ in range(rounds):
                    started = time.perf_counter()
                    result = await tool(words)
                    best_tool = min(best_tool, time.perf_counter() - started)
                    started = time.perf_counter()
                    rows = direct(words)
                    best_sdk = min(best_sdk, time.perf_counter() - started)
                ids = [row[0] for row in result.structured_content["rows"]]
                if ids != [s.id for s in rows]:
                    raise SystemExit(f"{label}: the tool and the SDK disagree")
                ratio = best_tool / best_sdk
                worst = max(worst, ratio)
                print(
                    f"  {label:<26} tool {best_tool * 1000:7.1f} ms   "
                    f"SDK marketplace+select {best_sdk * 1000:7.1f} ms   {ratio:5.2f}x"
                )
                text = result.content[0].text
                data = json.dumps(result.structured_content, separators=(",", ":"))
                wire = result.model_dump_json(by_alias=True, exclude_none=True)
                sizes[label] = (len(text) // 4, len(data) // 4, len(wire) // 4)
        client.close()
        sandbox.close()
    ok_search = worst <= SEARCH_GOAL
    verdict = "ok" if ok_search else "OVER GOAL"
    print(f"worst tool / SDK: {worst:.2f}x (goal <= {SEARCH_GOAL:g}x): {verdict}")
    print("\nresult of the 20 cheapest matches, tokens (characters / 4)")
    for label, (text, data, wire) in sizes.items():
        print(f"  {label:<26} text {text:5d}   structured {data:5d}   whole result {wire:5d}")
    largest = max(wire for _, _, wire in sizes.values())
    ok_size = largest < TOKENS_GOAL
    verdict = "ok" if ok_size else "OVER GOAL"
    print(f"largest whole result: {largest} tokens (goal < {TOKENS_GOAL}): {verdict}")
    return ok_search, ok_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="start-up rounds")
    parser.add_argument("--search-rounds", type=int, default=15)
    parser.add_argument(
        "--only", choices=["startup", "search"], help="run one part (default: both)"
    )
    args = parser.parse_args(argv)
    ok_start = ok_search = ok_size = True
    if args.only != "search":
        ok_start = startup(args.rounds)
    if args.only != "startup":
        ok_search, ok_size = anyio.run(search, args.search_rounds)
    return 0 if ok_start and ok_search and ok_size else 1


if __name__ == "__main__":
    raise SystemExit(main())
