"""The sans-I/O core: requests are built, responses decoded and flows driven without I/O."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from clore._clock import ManualClock
from clore._core import (
    ENDPOINTS,
    Response,
    build_request,
    decode_response,
    parse_retry_after,
    user_agent,
)
from clore._flows import Context, Send, Sleep, marketplace
from clore._pacing import MemoryStore, Pacer, Pacing
from clore._wire import MarketplaceResponse, Server

KEY = "core-key-abcdefghijklmnop"


def test_every_endpoint_of_the_reference_is_in_the_table() -> None:
    """The endpoint table names every endpoint of the API reference with its method."""
    methods = {name: ep.method for name, ep in ENDPOINTS.items()}
    assert methods == {
        "marketplace": "GET",
        "spot_marketplace": "GET",
        "my_orders": "GET",
        "create_order": "POST",
        "cancel_order": "POST",
        "set_spot_price": "POST",
        "wallets": "GET",
        "my_servers": "GET",
        "server_config": "GET",
        "set_server_settings": "POST",
        "renter_fees": "GET",
        "poh_balance": "GET",
    }
    assert [n for n, ep in ENDPOINTS.items() if ep.kind == "create"] == ["create_order"]
    assert [n for n, ep in ENDPOINTS.items() if ep.method == "POST" and ep.idempotent] == []


def test_request_carries_the_key_in_the_auth_header_only() -> None:
    """The key goes in `auth` (not Authorization, never the URL); the UA is descriptive."""
    request = build_request(
        ENDPOINTS["my_orders"],
        "https://api.clore.ai/v1/",
        KEY,
        user_agent(),
        params={"return_completed": "true"},
    )
    assert request.url == "https://api.clore.ai/v1/my_orders?return_completed=true"
    assert request.headers["auth"] == KEY
    assert "Authorization" not in request.headers
    assert request.headers["User-Agent"].startswith("clore-python/")
    assert "httpx/" in request.headers["User-Agent"] and "python/" in request.headers["User-Agent"]
    assert request.content is None
    assert KEY not in repr(request)


def test_anonymous_request_has_no_auth_header() -> None:
    """Without a key no `auth` header is sent."""
    request = build_request(ENDPOINTS["marketplace"], "https://x/v1", None, "ua")
    assert "auth" not in request.headers


def test_server_config_is_a_get_with_a_json_body() -> None:
    """server_config is a GET whose JSON body names the server."""
    request = build_request(
        ENDPOINTS["server_config"], "https://x/v1", KEY, "ua", body={"server_name": "rig-1"}
    )
    assert request.method == "GET"
    assert json.loads(request.content or b"") == {"server_name": "rig-1"}
    assert request.headers["Content-Type"] == "application/json"


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    """Retry-After is read as seconds or as an HTTP date; garbage is ignored."""
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (parse_retry_after(later) or 0) <= 31


def test_write_success_decodes_to_the_envelope() -> None:
    """`{"code": 0}` for a write decodes without error."""
    result = decode_response(ENDPOINTS["cancel_order"], 200, {}, b'{"code":0}')
    assert result.code == 0


def test_raw_mode_returns_the_body_as_sent() -> None:
    """In raw mode the decoded dict is returned unchanged (used by the compat wrapper)."""
    body = {"wallets": [{"name": "bitcoin", "odd": [1]}], "code": 0}
    assert (
        decode_response(ENDPOINTS["wallets"], 200, {}, json.dumps(body).encode(), raw=True) == body
    )


def test_one_malformed_server_does_not_sink_the_marketplace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bad record is skipped (and logged); the other servers are returned."""
    body = {
        "servers": [{"id": 1}, {"id": "not-a-number"}, {"id": 3, "specs": "broken"}, {"id": 4}],
        "my_servers": [1],
        "code": 0,
    }
    with caplog.at_level(logging.WARNING, logger="clore"):
        result = decode_response(ENDPOINTS["marketplace"], 200, {}, json.dumps(body).encode())
    assert isinstance(result, MarketplaceResponse)
    assert [s.id for s in result.servers] == [1, 4]
    assert result.my_servers == [1]
    assert "skipped 2 malformed server record(s)" in caplog.text


def test_snapshot_with_a_corrupted_record_keeps_the_rest(snapshot_bytes: bytes) -> None:
    """Corrupting one record of the real snapshot loses exactly that record."""
    body = json.loads(snapshot_bytes)
    body["servers"][10]["price"] = "free"
    result = decode_response(ENDPOINTS["marketplace"], 200, {}, json.dumps(body).encode())
    assert len(result.servers) == 3499


def test_null_fields_read_as_missing_ones() -> None:
    """An order or server whose fields arrive as null decodes with the defaults, not an error."""
    order = {
        "id": 7, "si": 3, "pub_cluster": None, "tcp_ports": None, "specs": None, "price": None,
        "spend": None, "online": None, "rating": None, "creation_fee": None, "http_pub": None,
    }  # fmt: skip
    body = json.dumps({"orders": [order], "code": 0}).encode()
    decoded = decode_response(ENDPOINTS["my_orders"], 200, {}, body).orders[0]
    assert (decoded.id, decoded.pub_cluster, decoded.tcp_ports, decoded.price) == (7, [], [], 0)
    assert (decoded.ready, decoded.http_pub, decoded.specs.gpu) == (False, None, "")
    server = {
        "id": 5, "mrl": None, "rating": None, "allowed_coins": None,
        "specs": {"gpu": "2x RTX 4090", "net": None},
        "price": {"on_demand": {"bitcoin": None, "USD-Blockchain": 2.5}, "usd": None},
    }  # fmt: skip
    body = json.dumps({"servers": [server, {"id": 6}], "code": 0}).encode()
    servers = decode_response(ENDPOINTS["marketplace"], 200, {}, body).servers
    assert [s.id for s in servers] == [5, 6]
    assert (servers[0].gpu_count, servers[0].price_per_day("bitcoin")) == (2, None)
    assert servers[0].usd_per_day() == 2.5
    wallets = b'{"wallets":[{"name":"bitcoin","balance":null,"deposit":null}],"code":0}'
    assert decode_response(ENDPOINTS["wallets"], 200, {}, wallets).wallets[0].balance is None


def test_a_null_record_in_a_marketplace_is_skipped_not_fatal() -> None:
    """A record still invalid once nulls are dropped is skipped; the rest and my ids survive."""
    body = {"servers": [{"id": None}, {"id": 2, "specs": None}], "my_servers": ["2", 3, True]}
    result = decode_response(ENDPOINTS["marketplace"], 200, {}, json.dumps(body).encode())
    assert [s.id for s in result.servers] == [2]
    assert result.my_servers == [2, 3]


def _drive(flow, replies, clock):  # type: ignore[no-untyped-def]
    """Run a flow by hand: answer Send from ``replies``, sleep on ``clock``; record actions."""
    actions: list[object] = []
    answer = None
    try:
        while True:
            action = flow.send(answer)
            actions.append(action)
            if isinstance(action, Sleep):
                clock.sleep(action.seconds)
            answer = replies.pop(0) if isinstance(action, Send) else None
    except StopIteration as stop:
        return stop.value, actions


def _ctx(clock: ManualClock) -> Context:
    return Context(
        base_url="https://x/v1",
        api_key=KEY,
        user_agent="ua",
        clock=clock,
        pacer=Pacer(Pacing(), MemoryStore()),
    )


def test_flows_only_yield_send_and_sleep_actions() -> None:
    """A flow is driven purely by answering its Send actions; no I/O happens inside."""
    clock = ManualClock()
    ctx = _ctx(clock)
    ok = Response(200, {}, b'{"servers":[{"id":5}],"code":0}')
    busy = Response(200, {}, b'{"code":1}')
    servers, actions = _drive(marketplace(ctx), [busy, ok], clock)
    assert servers == [Server(id=5)]
    kinds = [type(a).__name__ for a in actions]
    assert kinds == ["Send", "Sleep", "Sleep", "Send"]  # backoff, then pacing's remainder
    assert all(isinstance(a, Send | Sleep) for a in actions)
