"""``clore mcp`` as a real process: one stdio session with the SDK's stdio client against
``clore --sandbox mcp`` (isolated config, data and cache dirs), one streamable-HTTP
session on loopback, the refusal of a host off loopback, the one line without the
``mcp`` extra (the SDK blocked from importing in the subprocess), and start-up: the
tools listed without the SDK client (httpx not even imported), a bad policy refused
before the SDK loads, a bad base URL answered by the first tool call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from clore.cli.mcp_cmd import MISSING_EXTRA

# ``clore ARGS`` with the mcp command registered (it is, once cli/_group.py lists it).
_RUN = """\
import sys
if sys.argv[1] == "--report-modules":
    import atexit, json
    sys.argv.pop(1)
    _report = sys.argv.pop(1)

    def _loaded():
        with open(_report, "w") as handle:
            json.dump(sorted(sys.modules), handle)

    atexit.register(_loaded)
if sys.argv[1] == "--block-mcp":
    sys.argv.pop(1)

    class _NoMcp:
        def find_spec(self, name, path=None, target=None):
            if name == "mcp" or name.startswith("mcp."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NoMcp())
from clore.cli import cli, main
from clore.cli._group import COMMANDS
if "mcp" not in COMMANDS:
    from clore.cli.mcp_cmd import mcp
    cli.add_command(mcp)
main(sys.argv[1:])
"""


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-c", _RUN, *args]


def _request(id_: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}


_HANDSHAKE = [
    _request(
        1,
        "initialize",
        {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    ),
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]


def _session(
    argv: list[str], messages: list[dict[str, Any]], env: dict[str, str]
) -> tuple[dict[int, Any], str]:
    """Send ``messages`` over stdin, read until every request is answered, close stdin;
    the answers by id and stderr (the process has exited)."""
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    waiting = {m["id"] for m in messages if "id" in m}
    answers: dict[int, Any] = {}
    try:
        process.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        process.stdin.flush()
        while waiting - answers.keys():
            line = process.stdout.readline()
            if not line:
                break
            message = json.loads(line)
            if "id" in message:
                answers[message["id"]] = message
        _, stderr = process.communicate(timeout=60)  # closes stdin: the server ends
    finally:
        process.kill()
    return answers, stderr


@pytest.fixture
def api_env() -> dict[str, str]:
    """A key and a loopback base URL that nothing listens on (never contacted here)."""
    return {
        **os.environ,
        "CLORE_API_KEY": "key-for-the-test-never-sent",
        "CLORE_BASE_URL": "http://127.0.0.1:9/v1",
    }


def test_listing_the_tools_makes_no_client(tmp_path: Path, api_env: dict[str, str]) -> None:
    """initialize and tools/list are answered with every tool, and neither the SDK
    client nor httpx was imported: the client is the first tool call's to make."""
    report = tmp_path / "modules.json"
    answers, stderr = _session(
        _argv("--report-modules", str(report), "mcp"),
        [*_HANDSHAKE, _request(2, "tools/list", {})],
        api_env,
    )
    names = {t["name"] for t in answers[2]["result"]["tools"]}
    assert {"search_market", "quote_rental", "rent_server", "cancel_order"} <= names
    loaded = set(json.loads(report.read_text()))
    assert {"mcp", "clore.agent"} <= loaded
    assert {"httpx", "clore._client"} & loaded == set()
    assert "key-for-the-test-never-sent" not in stderr


def test_a_bad_policy_fails_at_start_in_one_line(tmp_path: Path, api_env: dict[str, str]) -> None:
    """A setting agent.toml does not know: exit 2 and one line naming it, before the SDK
    is even imported."""
    config = Path(os.environ["CLORE_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "agent.toml").write_text("max_price = 1\n")
    report = tmp_path / "modules.json"
    done = subprocess.run(
        _argv("--report-modules", str(report), "mcp"),
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        env=api_env,
    )
    lines = done.stderr.strip().splitlines()
    assert (done.returncode, done.stdout, len(lines)) == (2, "", 1)
    assert "agent.toml" in lines[0] and "max_price" in lines[0]
    assert "mcp" not in json.loads(report.read_text())


def test_a_bad_base_url_is_the_first_tool_call_s_error(api_env: dict[str, str]) -> None:
    """The client is made by the first call: a base URL it refuses is that call's
    one-line config error (and a line on stderr); the server answers on."""
    env = {**api_env, "CLORE_BASE_URL": "ftp://example.invalid/v1"}
    answers, stderr = _session(
        _argv("mcp"),
        [
            *_HANDSHAKE,
            _request(2, "tools/call", {"name": "list_gpus", "arguments": {}}),
            _request(3, "tools/list", {}),
        ],
        env,
    )
    result = answers[2]["result"]
    assert result["isError"] is True and result["structuredContent"]["error"] == "config"
    assert "invalid base_url" in result["content"][0]["text"]
    assert answers[3]["result"]["tools"]
    assert "invalid base_url" in stderr and "Traceback" not in stderr


@pytest.fixture
def demo_key() -> str:
    """The embedded sandbox's demo key (the state ``clore --sandbox`` uses in this test's
    isolated data dir), made before the server starts."""
    from clore.sandbox import Sandbox, default_db_path

    path = default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(db=path, rate_limit=False)
    try:
        return sandbox.demo_key
    finally:
        sandbox.close()


@pytest.fixture
def errlog(tmp_path: Path) -> Iterator[tempfile._TemporaryFileWrapper[str]]:
    with tempfile.NamedTemporaryFile("w+", dir=tmp_path, suffix=".stderr") as handle:
        yield handle


def test_without_the_mcp_extra_one_line_says_how_to_get_it() -> None:
    """The SDK missing: exit 2 and one line naming the extra, no traceback."""
    done = subprocess.run(_argv("--block-mcp", "mcp"), capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert [f"clore: error: {MISSING_EXTRA}"] == done.stderr.strip().splitlines()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_a_host_off_loopback_is_refused(host: str) -> None:
    """--http --host anything but loopback: exit 2 and one line, nothing served."""
    done = subprocess.run(
        _argv("--sandbox", "mcp", "--http", "--host", host),
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stderr.strip().splitlines()
    assert (done.returncode, len(lines)) == (2, 1)
    assert "loopback" in lines[0] and repr(host) in lines[0]


@pytest.mark.slow
async def test_a_real_stdio_session_lists_the_tools_and_searches(
    demo_key: str, errlog: tempfile._TemporaryFileWrapper[str]
) -> None:
    """`clore --sandbox mcp` over stdio: the tools are listed, a search answers rows of
    the seeded market; the demo key is in no result and not on stderr."""
    argv = _argv("--sandbox", "mcp")
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
    async with Client(stdio_client(params, errlog=errlog)) as client:
        listed = (await client.list_tools()).tools
        found = await client.call_tool("search_market", {"filters": ["gpu=4090"], "limit": 5})
        wallets = await client.call_tool("wallets", {})
    names = [t.name for t in listed]
    assert {"search_market", "quote_rental", "rent_server", "cancel_order"} <= set(names)
    assert not found.is_error
    assert isinstance(found.structured_content, dict)
    rows = found.structured_content["rows"]
    assert len(rows) == 5 and all("4090" in row[1] for row in rows)
    block = found.content[0]
    assert isinstance(block, types.TextContent) and str(rows[0][0]) in block.text
    assert not wallets.is_error
    errlog.seek(0)
    stderr = errlog.read()
    seen = "\n".join(r.model_dump_json() for r in (found, wallets)) + stderr
    assert demo_key not in seen


@pytest.mark.slow
async def test_a_streamable_http_session_on_loopback(demo_key: str) -> None:
    """--http --port 0 --json prints its URL; the SDK's HTTP client lists the tools there
    (read-only: no mutating tool) and searches."""
    process = subprocess.Popen(
        _argv("--sandbox", "mcp", "--http", "--port", "0", "--read-only", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = json.loads(process.stdout.readline())["url"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
        async with Client(url) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            found = await client.call_tool("search_market", {"limit": 3})
        assert "search_market" in names and not {"rent_server", "cancel_order"} & names
        assert not found.is_error and demo_key not in found.model_dump_json()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert demo_key not in stderr
