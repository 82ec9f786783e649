"""Request text never reaches a header unescaped: every request gets a JSON answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from sandbox_support import LiveServer

from clore.sandbox import Sandbox
from clore.sandbox.access import header_text

TRICKY_NAMES = ["\r", "\n", "\r\n", "a\r\nset-cookie: stolen=1", "\x00", "\x7f", "é\u2028😀", " "]


def _safe_header(value: str) -> bool:
    return all(" " <= ch <= "~" for ch in value) and value == value.strip(" ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("a\r\nb\tc\\d", "a\\r\\nb\\tc\\\\d"),
        ("\x00\x7f\x1b", "\\u0000\\u007f\\u001b"),
        ("é😀", "\\u00e9\\U0001f600"),
        ("  padded  ", "padded"),
        ("x" * 600, "x" * 509 + "..."),
        ("x" * 512, "x" * 512),
        ("\n" * 300, "\\n" * 254 + "..."),
    ],
)
def test_header_text_escapes_to_visible_ascii_and_caps_the_length(text: str, expected: str) -> None:
    """CR, LF, tab, backslash, controls and non-ASCII are escaped; at most 512 characters."""
    assert header_text(text) == expected


@pytest.mark.slow
def test_control_bodies_with_cr_lf_field_names_get_a_json_answer_over_http(
    live_server: Callable[..., LiveServer],
) -> None:
    """CR/LF (and other odd) field names in control bodies: answered {"code": 2} over TCP,
    with a readable, escaped x-sandbox-detail, no injected header, and no traceback."""
    server = live_server("--no-rate-limit")
    root = server.root
    answers = []
    with httpx.Client(base_url=root, timeout=10) as client:
        for name in TRICKY_NAMES:
            for path, body in (
                ("/_sandbox/users", {name: None, "name": "x"}),
                ("/_sandbox/advance", {"seconds": 1, name: 1}),
                ("/_sandbox/faults", {"endpoint": "wallets", "fault": "db_error", name: 1}),
                ("/_sandbox/servers/1", {name: True}),
                ("/_sandbox/market/tick", {name: 1}),
            ):
                response = client.post(path, content=json.dumps(body))
                answers.append((path, name, response))
    for path, name, response in answers:
        detail = response.headers["x-sandbox-detail"]
        assert (response.status_code, response.json()) == (200, {"code": 2}), (path, name)
        assert _safe_header(detail) and "set-cookie" not in response.headers, detail
    first = answers[0][2].headers["x-sandbox-detail"]
    assert first == "/_sandbox/users: Object contains unknown field `\\r`"
    assert "Traceback" not in server.log()


@pytest.mark.slow
def test_create_order_env_name_with_cr_lf_and_a_long_value_gets_a_json_answer_over_http(
    live_server: Callable[..., LiveServer],
) -> None:
    """An env name holding CR/LF with a value over 16,384 characters is {"code": 2} over
    TCP (the detail names it escaped and capped), not a dropped connection."""
    server = live_server("--no-rate-limit")
    body = {
        "currency": "bitcoin",
        "image": "ubuntu",
        "renting_server": 1,
        "type": "on-demand",
        "env": {"A\r\nB": "v" * 16385},
    }
    long_name = {**body, "env": {"\r\n" * 128: "v" * 16385}}
    headers = {"auth": server.demo_key}
    with httpx.Client(base_url=server.base, headers=headers, timeout=10) as client:
        short = client.post("/create_order", content=json.dumps(body))
        long = client.post("/create_order", content=json.dumps(long_name))
        orders = client.get("/my_orders").json()
    for response in (short, long):
        assert (response.status_code, response.json()) == (200, {"code": 2})
        assert _safe_header(response.headers["x-sandbox-detail"])
    assert short.headers["x-sandbox-detail"] == "env: value of A\\r\\nB too long"
    assert len(long.headers["x-sandbox-detail"]) <= 512
    assert orders == {"code": 0, "orders": []}
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/%0A/%0D", 4),
        ("/v1/wallets%0A", 4),
        ("/_sandbox/info%0D%0A", 4),
        ("/_sandbox/servers/1%0A", 2),
        ("/%0A", 4),
    ],
)
def test_paths_with_cr_or_lf_get_a_json_answer(
    small: Sandbox, asgi_client: Callable[..., httpx.Client], path: str, code: int
) -> None:
    """A path holding a newline reaches the sandbox (JSON code 4 or 2), not a plain 404."""
    response = asgi_client(small).post(path, json={})
    assert (response.status_code, response.json()) == (200, {"code": code})


def test_a_websocket_handshake_is_refused_without_an_error(small: Sandbox) -> None:
    """The sandbox speaks HTTP only: a websocket scope is closed (1008), nothing raised."""
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/v1/marketplace", "headers": [], "client": None}
    asyncio.run(small.app(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]
