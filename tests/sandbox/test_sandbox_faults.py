"""Injected faults: each answers as documented, and changes the state only when it says so."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from clore._clock import ManualClock
from clore.sandbox import Sandbox
from clore.sandbox.backend import ApiError
from clore.sandbox.faults import AFTER_COMMIT, FAULT_HELP, FAULTS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"
ORDER = {"currency": "bitcoin", "image": "img", "renting_server": 1, "type": "on-demand"}

#: (fault, HTTP status, body, content type) of the faults answered without acting.
UP_FRONT = [
    ("db_error", 200, b'{"code":1}', "application/json"),
    ("rate_limit", 429, b'{"code":5}', "application/json"),
    ("rate_limit_200", 200, b'{"code":5}', "application/json"),
    ("http_500", 500, None, "text/plain"),
    ("http_502_json", 502, b'{"code":0}', "application/json"),
    ("garbled", 200, None, "text/html"),
    ("phantom_success", 200, b'{"code":0}', "application/json"),
]
#: (fault, HTTP status, content type) of the faults that act, then spoil the answer.
SPOILED = [
    ("http_500_after_commit", 500, "text/plain"),
    ("garbled_after_commit", 200, "text/html"),
]


def orders(api: httpx.Client) -> list[int]:
    """Server ids of the demo user's live orders."""
    return [o["si"] for o in api.get("/my_orders").json()["orders"]]


@pytest.mark.parametrize(("fault", "status", "body", "content_type"), UP_FRONT)
def test_up_front_faults_answer_without_acting(
    api: httpx.Client,
    small: Sandbox,
    fault: str,
    status: int,
    body: bytes | None,
    content_type: str,
) -> None:
    """The faulted create_order gets the fault's answer and rents nothing; the next one works."""
    small.inject_fault("create_order", fault)
    response = api.post("/create_order", json=ORDER)
    assert (response.status_code, response.headers["content-type"]) == (status, content_type)
    if body is None:  # not JSON at all
        with pytest.raises(ValueError):
            response.json()
    else:
        assert response.content == body
    assert orders(api) == []
    assert api.post("/create_order", json=ORDER).json() == {"code": 0}
    assert orders(api) == [1]


@pytest.mark.parametrize(("fault", "status", "content_type"), SPOILED)
def test_spoiled_answers_come_after_the_call_took_effect(
    api: httpx.Client, small: Sandbox, fault: str, status: int, content_type: str
) -> None:
    """The order is rented, and the answer is a 500 or a page that is not JSON."""
    small.inject_fault("create_order", fault)
    response = api.post("/create_order", json=ORDER)
    assert (response.status_code, response.headers["content-type"]) == (status, content_type)
    with pytest.raises(ValueError):
        response.json()
    assert orders(api) == [1]


@pytest.mark.parametrize(
    ("fault", "error", "acted"),
    [
        ("timeout", httpx.ReadTimeout, False),
        ("timeout_after_commit", httpx.ReadTimeout, True),
        ("drop_after_commit", httpx.RemoteProtocolError, True),
        ("late_commit", httpx.ReadTimeout, False),
    ],
)
def test_unanswered_calls_raise_in_process_and_act_as_documented(
    api: httpx.Client, small: Sandbox, fault: str, error: type[Exception], acted: bool
) -> None:
    """No answer reaches the client; only the after-commit faults have rented by then."""
    small.inject_fault("create_order", fault)
    with pytest.raises(error):
        api.post("/create_order", json=ORDER)
    assert orders(api) == ([1] if acted else [])


def test_rate_limit_with_seconds_sends_retry_after_rounded_up(
    api: httpx.Client, small: Sandbox
) -> None:
    """seconds on rate_limit become a Retry-After header of whole seconds."""
    small.inject_fault("wallets", "rate_limit", seconds=3.2)
    response = api.get("/wallets")
    assert (response.status_code, response.headers["retry-after"]) == (429, "4")
    small.inject_fault("wallets", "rate_limit")
    assert "retry-after" not in api.get("/wallets").headers


def test_a_late_commit_takes_effect_just_before_the_resend(
    api: httpx.Client, small: Sandbox
) -> None:
    """Held back, the first create_order commits when the second arrives: the resend meets
    the server it rented (server-already-rented), and one order exists."""
    small.inject_fault("create_order", "late_commit")
    with pytest.raises(httpx.ReadTimeout):
        api.post("/create_order", json=ORDER)
    assert orders(api) == []  # requests to other endpoints leave it held
    assert api.get("/wallets").json()["code"] == 0 and orders(api) == []
    again = api.post("/create_order", json=ORDER).json()
    assert again == {"code": 6, "error": "server-already-rented"}
    assert orders(api) == [1]


def test_a_timed_late_commit_waits_for_sandbox_time_not_for_requests(
    api: httpx.Client, small: Sandbox
) -> None:
    """With seconds, the held request ignores the resend and commits once the time passed."""
    small.inject_fault("create_order", "late_commit", seconds=60)
    with pytest.raises(httpx.ReadTimeout):
        api.post("/create_order", json=ORDER)
    resend = {**ORDER, "renting_server": 4}
    assert api.post("/create_order", json=resend).json() == {"code": 0}
    small.advance(59)
    assert orders(api) == [4]
    small.advance(1)
    assert sorted(orders(api)) == [1, 4]


def test_a_timed_late_commit_also_lands_at_the_next_request_after_its_time(
    api: httpx.Client, small: Sandbox, clock: ManualClock
) -> None:
    """Time that passes without advance() (a client's sleep on the shared clock) is noticed
    by the next request, which finds the late order in place."""
    small.inject_fault("create_order", "late_commit", seconds=30)
    with pytest.raises(httpx.ReadTimeout):
        api.post("/create_order", json=ORDER)
    clock.advance(31)
    assert orders(api) == [1]


def test_a_late_commit_is_neither_rate_limited_nor_counted(
    sandbox_factory: Callable[..., Sandbox], small_seed: Path
) -> None:
    """With rate limits on, the held create_order lands at its resend's moment, and the
    resend itself is judged as if the late one were not there."""
    sb = sandbox_factory(seed=str(small_seed), rate_limit=True)
    with httpx.Client(
        transport=sb.transport(), base_url="http://sandbox.local/v1", headers={"auth": sb.demo_key}
    ) as api:
        sb.inject_fault("create_order", "late_commit")
        with pytest.raises(httpx.ReadTimeout):
            api.post("/create_order", json=ORDER)
        sb.advance(5)
        resend = api.post("/create_order", json={**ORDER, "renting_server": 4})
        assert resend.json() == {"code": 0}
        sb.advance(1)
        assert sorted(orders(api)) == [1, 4]


def test_clearing_faults_and_reset_drop_held_requests(api: httpx.Client, small: Sandbox) -> None:
    """A held request never lands once the faults were cleared or the sandbox reset."""
    for drop in (small.clear_faults, small.reset):
        small.inject_fault("create_order", "late_commit")
        with pytest.raises(httpx.ReadTimeout):
            api.post("/create_order", json=ORDER)
        drop()
        api.headers["auth"] = small.demo_key
        assert api.post("/create_order", json={**ORDER, "renting_server": 4}).json()["code"] == 0
        assert orders(api) == [4]
        api.post("/cancel_order", json={"id": api.get("/my_orders").json()["orders"][0]["id"]})


def test_only_rate_limit_and_late_commit_take_seconds(small: Sandbox) -> None:
    """seconds elsewhere, or not finite, or negative, are refused as invalid input."""
    for fault, seconds in (("db_error", 1.0), ("rate_limit", -1.0), ("late_commit", float("nan"))):
        with pytest.raises(ApiError) as info:
            small.inject_fault("wallets", fault, seconds=seconds)
        assert info.value.code == 2
    small.inject_fault("wallets", "late_commit", seconds=1.5)
    assert small.faults() == [("wallets", "late_commit@1.5", 1)]


def test_every_fault_is_injectable_over_the_control_plane(
    api: httpx.Client, small: Sandbox
) -> None:
    """POST /_sandbox/faults takes each fault name the table holds."""
    control = httpx.Client(transport=small.transport(), base_url="http://sandbox.local")
    for name in FAULTS:
        body = {"endpoint": "wallets", "fault": name}
        assert control.post("/_sandbox/faults", json=body).json() == {"code": 0}
    assert [f for _, f, _ in small.faults()] == list(FAULTS)


def test_the_fault_table_has_one_line_per_fault_and_the_docs_name_each() -> None:
    """FAULT_HELP describes every fault; docs/sandbox.md's fault table has a row for each."""
    assert tuple(FAULT_HELP) == FAULTS and all(FAULT_HELP.values())
    assert set(FAULTS) > AFTER_COMMIT
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", DOCS.read_text(encoding="utf-8"), re.MULTILINE)
    assert set(FAULTS) <= set(rows)


def test_after_commit_faults_over_asgi_act_and_then_fail(
    sandbox_factory: Callable[..., Sandbox],
    small_seed: Path,
    asgi_client: Callable[[Sandbox], httpx.Client],
) -> None:
    """Through the Starlette app a 500 after commit is a real 500, and the order exists."""
    sb = sandbox_factory(seed=str(small_seed), rate_limit=False)
    with asgi_client(sb) as http:
        http.headers["auth"] = sb.demo_key
        sb.inject_fault("create_order", "http_500_after_commit")
        assert http.post("/v1/create_order", json=ORDER).status_code == 500
        sb.inject_fault("wallets", "rate_limit", seconds=2)
        assert http.get("/v1/wallets").headers["retry-after"] == "2"
        assert [o["si"] for o in http.get("/v1/my_orders").json()["orders"]] == [1]
