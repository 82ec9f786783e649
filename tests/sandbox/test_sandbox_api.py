"""API tests through the ASGI app: envelope, codes, statuses, field names and units."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from clore._clock import ManualClock
from clore.sandbox import Sandbox


@pytest.fixture
def app_sandbox(sandbox_factory: Callable[..., Sandbox], small_seed: Path) -> Sandbox:
    """The small market with rate limits ON (tests move the clock between calls)."""
    return sandbox_factory(seed=str(small_seed), rate_limit=True)


@pytest.fixture
def http(app_sandbox: Sandbox, asgi_client: Callable[[Sandbox], httpx.Client]) -> httpx.Client:
    return asgi_client(app_sandbox)


@pytest.fixture
def call(http: httpx.Client, app_sandbox: Sandbox, clock: ManualClock) -> Callable[..., Any]:
    """Call an endpoint as the demo user one second after the previous call."""

    def do(method: str, path: str, key: str | None = "demo", **kw: Any) -> Any:
        clock.advance(1.0)
        headers = {"auth": app_sandbox.demo_key if key == "demo" else key} if key else {}
        return http.request(method, "/v1/" + path, headers=headers, **kw)

    return do


def test_marketplace_works_without_a_key(call: Callable[..., Any]) -> None:
    """marketplace answers anonymous callers; my_servers is then empty."""
    response = call("GET", "marketplace", key=None)
    body = response.json()
    assert response.status_code == 200 and body["code"] == 0 and body["my_servers"] == []
    assert [s["id"] for s in body["servers"]] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert list(response.json()["servers"][0]) == [
        "id",
        "owner",
        "mrl",
        "price",
        "rented",
        "specs",
        "reliability",
        "allowed_coins",
        "rating",
        "cuda_version",
    ]


def test_marketplace_lists_the_callers_servers(call: Callable[..., Any]) -> None:
    """With the demo key, my_servers holds the demo user's server ids."""
    assert call("GET", "marketplace").json()["my_servers"] == [6, 7, 8]


def test_snapshot_marketplace_is_the_capture(
    sandbox: Sandbox, asgi_client: Callable[[Sandbox], httpx.Client]
) -> None:
    """The seeded sandbox serves the bundled capture, field for field."""
    data = resources.files("clore.sandbox").joinpath("data/marketplace-snapshot-2024.json.gz")
    capture = json.loads(gzip.decompress(data.read_bytes()))
    body = asgi_client(sandbox).get("/v1/marketplace").json()
    assert len(body["servers"]) == 3500
    assert body == capture


@pytest.mark.parametrize("path", ["nope", "v2/marketplace", "", "marketplace/extra"])
def test_unknown_endpoint_is_code_4(http: httpx.Client, path: str) -> None:
    """An unknown path answers HTTP 200 {"code": 4}."""
    response = http.get("/v1/" + path)
    assert (response.status_code, response.json()) == (200, {"code": 4})
    assert http.get("/" + path).json() == {"code": 4}


def test_wrong_method_is_code_4(call: Callable[..., Any]) -> None:
    """A documented endpoint called with another method is not an endpoint."""
    assert call("POST", "wallets", json={}).json() == {"code": 4}
    assert call("GET", "create_order").json() == {"code": 4}


@pytest.mark.parametrize(
    "path", ["my_orders", "wallets", "my_servers", "poh_balance", "renter_fees"]
)
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_private_endpoints_need_a_valid_key(
    call: Callable[..., Any], path: str, key: str | None
) -> None:
    """Missing or bad auth on a private endpoint is HTTP 401 {"code": 3}."""
    response = call("GET", path, key=key)
    assert (response.status_code, response.json()) == (401, {"code": 3})


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b"",
        json.dumps({"currency": "bitcoin", "image": "x"}).encode(),  # missing renting_server
        json.dumps(
            {"currency": "bitcoin", "image": "x", "renting_server": "1", "type": "on-demand"}
        ).encode(),
        json.dumps(
            {"currency": "bitcoin", "image": "x", "renting_server": -4, "type": "on-demand"}
        ).encode(),
        json.dumps(
            {
                "currency": "bitcoin",
                "image": "x",
                "renting_server": 1,
                "type": "spot",
                "spotprice": 1e400,
            }
        ).encode(),
        json.dumps(
            {"currency": "bitcoin", "image": "x", "renting_server": 2**70, "type": "on-demand"}
        ).encode(),
    ],
)
def test_malformed_create_order_is_code_2(
    call: Callable[..., Any], clock: ManualClock, body: bytes
) -> None:
    """Malformed JSON, wrong types, missing and out-of-range fields: HTTP 200 {"code": 2}."""
    clock.advance(5)
    response = call("POST", "create_order", content=body)
    assert (response.status_code, response.json()) == (200, {"code": 2})


def test_create_order_answers_code_0_only(call: Callable[..., Any]) -> None:
    """create_order answers {"code": 0} and nothing else; the order shows in my_orders."""
    body = {"currency": "bitcoin", "image": "ubuntu", "renting_server": 1, "type": "on-demand"}
    assert call("POST", "create_order", json=body).json() == {"code": 0}
    orders = call("GET", "my_orders").json()["orders"]
    assert [(o["si"], o["spot"], o["expired"]) for o in orders] == [(1, False, False)]


def test_my_orders_fields_and_units(call: Callable[..., Any], clock: ManualClock) -> None:
    """Orders carry mrl in seconds, lists for pub_cluster/tcp_ports and the server's facts."""
    body = {
        "currency": "bitcoin",
        "image": "ubuntu",
        "renting_server": 1,
        "type": "on-demand",
        "ports": {"22": "tcp", "8888": "http"},
    }
    call("POST", "create_order", json=body)
    clock.advance(20)
    (order,) = call("GET", "my_orders").json()["orders"]
    assert order["mrl"] == 24 * 3600 and isinstance(order["ct"], int)
    assert isinstance(order["pub_cluster"], list) and isinstance(order["tcp_ports"], list)
    assert order["tcp_ports"][0].startswith("22:") and order["http_port"] == "8888"
    for name in (
        "creation_fee",
        "spend",
        "online",
        "specs",
        "reliability",
        "owner",
        "cuda_version",
        "rating",
    ):
        assert name in order
    assert "status" not in order and "remaining_balance" not in order


def test_return_completed_lists_expired_orders(call: Callable[..., Any]) -> None:
    """Cancelled orders appear only with return_completed=true, with expired: true."""
    call(
        "POST",
        "create_order",
        json={"currency": "bitcoin", "image": "u", "renting_server": 1, "type": "on-demand"},
    )
    oid = call("GET", "my_orders").json()["orders"][0]["id"]
    assert call("POST", "cancel_order", json={"id": oid, "issue": "slow disk"}).json() == {
        "code": 0
    }
    assert call("GET", "my_orders").json()["orders"] == []
    done = call("GET", "my_orders", params={"return_completed": "true"}).json()["orders"]
    assert [(o["id"], o["expired"]) for o in done] == [(oid, True)]
    assert call("GET", "my_orders", params={"return_completed": "maybe"}).json() == {"code": 2}


def test_spot_marketplace_shape(call: Callable[..., Any], clock: ManualClock) -> None:
    """spot_marketplace has offers (offer_id, bid, active, my, currency), server, rates, exists."""
    call(
        "POST",
        "create_order",
        json={
            "currency": "bitcoin",
            "image": "u",
            "renting_server": 4,
            "type": "spot",
            "spotprice": 0.05,
        },
    )
    body = call("GET", "spot_marketplace", params={"market": 4}).json()
    offer = body["market"]["offers"][0]
    assert body["exists"] is True and body["code"] == 0
    assert list(offer) == ["offer_id", "bid", "active", "my", "currency"]
    assert (offer["bid"], offer["active"], offer["my"]) == (0.05, True, True)
    assert body["market"]["server"] == {
        "min_pricing": {"bitcoin": 0.0432, "CLORE-Blockchain": 250},
        "mrl": 86400,
        "visibility": "public",
        "online": True,
    }
    assert body["market"]["currency_rates_in_usd"] == {
        "bitcoin": 68022.87,
        "CLORE-Blockchain": 0.002705,
        "USD-Blockchain": 1.0,
    }
    anonymous = call("GET", "spot_marketplace", key=None, params={"market": 4}).json()
    assert anonymous["market"]["offers"][0]["my"] is False
    assert call("GET", "spot_marketplace", params={"market": 999}).json()["exists"] is False
    assert call("GET", "spot_marketplace").json() == {"code": 2}


def test_application_errors_carry_their_fields(
    call: Callable[..., Any], clock: ManualClock
) -> None:
    """Code-6 answers carry error and extra fields such as max_step, with HTTP 200."""
    call(
        "POST",
        "create_order",
        json={
            "currency": "bitcoin",
            "image": "u",
            "renting_server": 4,
            "type": "spot",
            "spotprice": 0.1,
        },
    )
    oid = call("GET", "my_orders").json()["orders"][0]["id"]
    response = call("POST", "set_spot_price", json={"order_id": oid, "desired_price": 0.05})
    assert (response.status_code, response.json()) == (
        200,
        {"code": 6, "error": "exceeded_max_step", "max_step": 0.01},
    )
    clock.advance(5)
    taken = call(
        "POST",
        "create_order",
        json={"currency": "bitcoin", "image": "u", "renting_server": 3, "type": "on-demand"},
    )
    assert taken.json() == {"code": 6, "error": "server-already-rented"}


def test_wallets_fees_and_poh(call: Callable[..., Any]) -> None:
    """wallets lists the three currencies; renter_fees serves 10% and 2.5%."""
    wallets = call("GET", "wallets").json()["wallets"]
    assert [w["name"] for w in wallets] == ["bitcoin", "CLORE-Blockchain", "USD-Blockchain"]
    assert all(set(w) == {"name", "deposit", "balance", "withdrawal_fee"} for w in wallets)
    fees = call("GET", "renter_fees").json()
    assert fees["renter_fees"]["on_demand"]["base"]["bitcoin"] == 10.0
    assert fees["renter_fees"]["spot"]["base"]["CLORE-Blockchain"] == 2.5
    assert call("GET", "poh_balance").json() == {"balance": 0.0, "code": 0}


def test_host_endpoints(
    call: Callable[..., Any], http: httpx.Client, app_sandbox: Sandbox, clock: ManualClock
) -> None:
    """my_servers, server_config (a GET with a JSON body) and set_server_settings."""
    servers = call("GET", "my_servers").json()
    assert servers["limit"] == 16 and [s["id"] for s in servers["servers"]] == [6, 7, 8]
    clock.advance(1)
    config = http.request(
        "GET",
        "/v1/server_config",
        headers={"auth": app_sandbox.demo_key},
        content=json.dumps({"server_name": "server-6"}),
    ).json()
    assert config["creation_completed"] is True and config["config"]["mrl"] == 24
    assert config["config"]["rental_status"] == 0
    legacy = {"name": "server-6", "availability": False, "mrl": 72, "on_demand": 0.1, "spot": 0.05}
    assert call("POST", "set_server_settings", json=legacy).json() == {"code": 0}
    listing = call("GET", "marketplace", key=None).json()["servers"]
    assert 6 not in [s["id"] for s in listing]
    again = call("GET", "server_config", params={"server_name": "server-6"}).json()["config"]
    assert (again["visibility"], again["mrl"], again["pricing"]["bitcoin"]) == ("hidden", 72, 0.1)
    assert call("POST", "set_server_settings", json={"name": "server-6", "mrl": "long"}).json() == {
        "code": 2
    }
    assert call("GET", "server_config", params={"server_name": "server-1"}).json() == {"code": 2}


def test_rate_limit_is_one_second_per_key_and_rejections_do_not_move_it(
    http: httpx.Client, app_sandbox: Sandbox, clock: ManualClock
) -> None:
    """A second call within 1 s is HTTP 429 {"code": 5}; the window starts at the last accepted."""
    headers = {"auth": app_sandbox.demo_key}
    assert http.get("/v1/wallets", headers=headers).status_code == 200
    clock.advance(0.6)
    rejected = http.get("/v1/wallets", headers=headers)
    assert (rejected.status_code, rejected.json()) == (429, {"code": 5})
    clock.advance(0.4)  # 1.0 s after the accepted call, 0.4 s after the rejected one
    assert http.get("/v1/wallets", headers=headers).status_code == 200
    other_key, _ = app_sandbox.create_user("other", {})
    assert http.get("/v1/wallets", headers={"auth": other_key}).status_code == 200  # per key


def test_create_order_window_is_five_seconds(
    http: httpx.Client, app_sandbox: Sandbox, clock: ManualClock
) -> None:
    """Two create_order calls need 5 s between them, other calls only 1 s."""
    headers = {"auth": app_sandbox.demo_key}
    body = {"currency": "bitcoin", "image": "u", "renting_server": 1, "type": "on-demand"}
    assert http.post("/v1/create_order", headers=headers, json=body).json() == {"code": 0}
    clock.advance(2)
    assert http.get("/v1/my_orders", headers=headers).status_code == 200
    clock.advance(2)
    assert (
        http.post(
            "/v1/create_order", headers=headers, json={**body, "renting_server": 4}
        ).status_code
        == 429
    )
    clock.advance(1)
    assert http.post(
        "/v1/create_order", headers=headers, json={**body, "renting_server": 4}
    ).json() == {"code": 0}


def test_no_rate_limit_option(
    sandbox_factory: Callable[..., Sandbox],
    small_seed: Path,
    asgi_client: Callable[[Sandbox], httpx.Client],
) -> None:
    """rate_limit=False accepts requests as fast as they come."""
    sb = sandbox_factory(seed=str(small_seed), rate_limit=False)
    with asgi_client(sb) as client:
        assert {
            client.get("/v1/wallets", headers={"auth": sb.demo_key}).status_code for _ in range(20)
        } == {200}


@pytest.mark.parametrize(
    ("fault", "status", "body"), [("db_error", 200, {"code": 1}), ("rate_limit", 429, {"code": 5})]
)
def test_injected_faults_over_asgi(
    http: httpx.Client,
    app_sandbox: Sandbox,
    clock: ManualClock,
    fault: str,
    status: int,
    body: dict[str, int],
) -> None:
    """The next `count` calls fail as injected, then the endpoint works again."""
    assert http.post(
        "/_sandbox/faults", json={"endpoint": "wallets", "fault": fault, "count": 2}
    ).json() == {"code": 0}
    headers = {"auth": app_sandbox.demo_key}
    for _ in range(2):
        clock.advance(1)
        response = http.get("/v1/wallets", headers=headers)
        assert (response.status_code, response.json()) == (status, body)
    clock.advance(1)
    assert http.get("/v1/wallets", headers=headers).json()["code"] == 0


def test_injected_http_500_is_not_json(http: httpx.Client) -> None:
    """http_500 answers a plain-text 500: the one 500 the sandbox ever sends."""
    http.post("/_sandbox/faults", json={"endpoint": "marketplace", "fault": "http_500"})
    response = http.get("/v1/marketplace")
    assert response.status_code == 500 and response.headers["content-type"].startswith("text/plain")
    assert http.get("/v1/marketplace").status_code == 200


def test_control_plane(http: httpx.Client, app_sandbox: Sandbox, clock: ManualClock) -> None:
    """users, advance, servers, market/tick, faults, info and reset over HTTP."""
    made = http.post("/_sandbox/users", json={"name": "ci", "balances": {"bitcoin": 2.5}}).json()
    assert made["code"] == 0 and isinstance(made["user_id"], int)
    wallets = http.get("/v1/wallets", headers={"auth": made["api_key"]}).json()["wallets"]
    assert wallets[0]["balance"] == 2.5
    before = clock.time()
    assert http.post("/_sandbox/advance", json={"seconds": 3600}).json()["now"] == before + 3600
    assert http.post(
        "/_sandbox/servers/1", json={"rented": True, "price": {"on_demand": {"bitcoin": 0.5}}}
    ).json() == {"code": 0}
    listing = {s["id"]: s for s in http.get("/v1/marketplace").json()["servers"]}
    assert listing[1]["rented"] is True and listing[1]["price"]["on_demand"]["bitcoin"] == 0.5
    assert http.post("/_sandbox/servers/1", json={"online": False}).json() == {"code": 0}
    assert 1 not in [s["id"] for s in http.get("/v1/marketplace").json()["servers"]]
    events = http.post("/_sandbox/market/tick", json={"count": 5}).json()["events"]
    assert len(events) == 5
    http.post(
        "/_sandbox/faults", json={"endpoint": "/v1/my_orders", "fault": "timeout", "count": 3}
    )
    assert http.get("/_sandbox/faults").json()["faults"] == [
        {"endpoint": "my_orders", "fault": "timeout", "remaining": 3}
    ]
    assert http.delete("/_sandbox/faults").json() == {"code": 0}
    info = http.get("/_sandbox/info").json()
    assert info["demo_key"] == app_sandbox.demo_key and info["now"] == clock.time()
    assert http.post("/_sandbox/reset").json() == {"code": 0}
    assert http.get("/v1/wallets", headers={"auth": made["api_key"]}).status_code == 401
    assert {s["id"]: s["rented"] for s in http.get("/v1/marketplace").json()["servers"]}[1] is False


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_sandbox/users", {"balances": {}}),
        ("/_sandbox/users", {"name": "x", "balances": {"dogecoin": 1}}),
        ("/_sandbox/advance", {"seconds": -1}),
        ("/_sandbox/faults", {"endpoint": "nope", "fault": "db_error"}),
        ("/_sandbox/faults", {"endpoint": "wallets", "fault": "meteor"}),
        ("/_sandbox/servers/999", {"online": True}),
        ("/_sandbox/servers/x", {"online": True}),
        ("/_sandbox/servers/1", {"price": {"bitcoin": 0.5}}),
        ("/_sandbox/market/tick", {"count": 0}),
    ],
)
def test_control_plane_rejects_bad_bodies(
    http: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    """Bad control-plane bodies are code 2, unknown control paths code 4."""
    assert http.post(path, json=body).json() == {"code": 2}
    assert http.post("/_sandbox/nope").json() == {"code": 4}


def test_openapi_document(http: httpx.Client) -> None:
    """GET /_sandbox/openapi.json describes every v1 endpoint and the control plane."""
    doc = http.get("/_sandbox/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for name in (
        "marketplace",
        "my_orders",
        "create_order",
        "cancel_order",
        "set_spot_price",
        "wallets",
        "my_servers",
        "server_config",
        "set_server_settings",
        "spot_marketplace",
        "renter_fees",
        "poh_balance",
    ):
        assert f"/v1/{name}" in doc["paths"]
    assert "/_sandbox/faults" in doc["paths"] and "/_sandbox/servers/{server_id}" in doc["paths"]


def test_create_order_refuses_a_port_with_a_trailing_newline(call: Callable[..., Any]) -> None:
    """A ports key like "22\\n" is invalid input (code 2), not port 22."""
    body = {
        "currency": "bitcoin",
        "image": "ubuntu",
        "renting_server": 1,
        "type": "on-demand",
        "ports": {"22\n": "tcp"},
    }
    assert call("POST", "create_order", json=body).json() == {"code": 2}
    assert call("GET", "my_orders").json()["orders"] == []
