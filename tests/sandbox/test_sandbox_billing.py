"""Billing arithmetic under random sequences: spend is price x running time, wallets add up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clore._clock import ManualClock
from clore._wire import CancelOrderRequest, CreateOrderRequest, SetSpotPriceRequest
from clore.sandbox import ApiError, Sandbox
from clore.sandbox.backend.billing import (
    FEE_PAID_KEY,
    accrue,
    charge_creation_fee,
    creation_fee_charged,
    creation_fee_due,
    exhaustion_times,
    lazy_spend,
    run_seconds,
    unbilled,
)
from clore.sandbox.backend.records import OrderRec, WalletRec
from clore.sandbox.backend.rules import CREATION_FEE_AFTER

PRICE = 0.0864  # BTC per day on demand on every server of the market below


@pytest.fixture(scope="module")
def market_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    servers = [
        {
            "id": sid,
            "owner": 100 + sid,
            "mrl": 6,
            "price": {"on_demand": {"bitcoin": PRICE}, "spot": {"bitcoin": PRICE / 4}},
            "rented": False,
            "specs": {"gpu": "1x NVIDIA GeForce RTX 3090"},
            "allowed_coins": ["bitcoin"],
        }
        for sid in (1, 2, 3)
    ]
    path = tmp_path_factory.mktemp("billing") / "market.json"
    path.write_text(json.dumps({"servers": servers}))
    return path


operations = st.lists(
    st.one_of(
        st.tuples(st.just("rent"), st.sampled_from([1, 2, 3])),
        st.tuples(st.just("bid"), st.sampled_from([1, 2, 3]), st.floats(0.03, 0.2)),
        st.tuples(st.just("rival"), st.sampled_from([1, 2, 3]), st.floats(0.03, 0.2)),
        st.tuples(st.just("cancel"), st.integers(0, 5)),
        st.tuples(st.just("raise"), st.integers(0, 5), st.floats(1.0, 2.0)),
        st.tuples(st.just("wait"), st.floats(0, 30000)),
        st.tuples(st.just("offline"), st.sampled_from([1, 2, 3]), st.booleans()),
    ),
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations, funds=st.floats(0.0005, 0.05))
def test_spend_and_balances_add_up(
    market_file: Path, ops: list[tuple[Any, ...]], funds: float
) -> None:
    """Whatever happens, the wallet never goes negative and pays exactly fees plus spend;
    an order's creation fee is taken exactly when it has run 10 minutes."""
    clock = ManualClock()
    with Sandbox(seed=str(market_file), clock=clock, rate_limit=False, machines="off") as sb:
        backend = sb.backend
        user = sb.create_user("renter", {"bitcoin": funds})[1]
        rival = sb.create_user("rival", {"bitcoin": 100.0})[1]
        started: dict[int, float] = {}
        offline_since: dict[int, float | None] = {}
        for op in ops:
            try:
                if op[0] == "rent":
                    oid = backend.create_order(user, _order(int(op[1])))
                    started[oid] = clock.time()
                elif op[0] == "bid":
                    backend.create_order(user, _order(int(op[1]), float(op[2])))
                elif op[0] == "rival":
                    backend.create_order(rival, _order(int(op[1]), float(op[2])))
                elif op[0] in ("cancel", "raise"):
                    mine = backend.my_orders(user, False)
                    if mine:
                        target = mine[int(op[1]) % len(mine)].order
                        if op[0] == "cancel":
                            backend.cancel_order(user, CancelOrderRequest(id=target.id))
                        elif target.spot:
                            price = target.price * float(op[2])
                            backend.set_spot_price(
                                user, SetSpotPriceRequest(order_id=target.id, desired_price=price)
                            )
                elif op[0] == "wait":
                    sb.advance(float(op[1]))
                elif op[0] == "offline":
                    sb.set_server(int(op[1]), online=bool(op[2]))
                    offline_since[int(op[1])] = None
            except ApiError as exc:
                assert exc.code in (2, 6)
            _check(sb, user, funds, started, clock.time(), offline_since)


def _order(server: int, bid: float | None = None) -> CreateOrderRequest:
    if bid is None:
        return CreateOrderRequest(currency="bitcoin", image="ubuntu", renting_server=server)
    return CreateOrderRequest(
        currency="bitcoin", image="ubuntu", renting_server=server, type="spot", spotprice=bid
    )


def _check(
    sb: Sandbox,
    user: int,
    funds: float,
    started: dict[int, float],
    now: float,
    offline: dict[int, float | None],
) -> None:
    views = sb.backend.my_orders(user, True)
    (wallet,) = [w for w in sb.backend.wallets(user) if w.currency == "bitcoin"]
    assert wallet.balance >= 0.0
    paid = sum(creation_fee_charged(v.order) + v.spend * (1 + v.order.fee_rate) for v in views)
    assert funds - wallet.balance == pytest.approx(paid, rel=1e-9, abs=1e-15)
    for view in views:
        o = view.order
        ran = run_seconds(o) + (now - o.billed_until if o.billing else 0.0)
        if not o.billing or ran < 599.999 or ran > 600.001:  # on the edge: either is right
            assert (creation_fee_charged(o) > 0) == (ran >= 600.0)
        if not o.spot and o.id in started and view.server.id not in offline:
            end = o.ended_at if o.ended and o.ended_at is not None else now
            assert view.spend == pytest.approx(
                o.price * (end - started[o.id]) / 86400, rel=1e-9, abs=1e-15
            )
        assert view.spend >= 0.0


# --------------------------------------------------------------------------- the arithmetic's edges
# States the API cannot reach (a billing order without a wallet, an order charging nothing)
# are still answered: these functions are the rule, whoever calls them.


def _record(**fields: Any) -> OrderRec:
    base: dict[str, Any] = {
        "id": 1,
        "user_id": 7,
        "server_id": 1,
        "spot": False,
        "currency": "bitcoin",
        "price": PRICE,
        "fee_rate": 0.0,
        "image": "ubuntu",
        "ct": 0.0,
        "mrl": 86400.0,
        "end_at": 86400.0,
        "creation_fee": 0.0,
        "billed_until": 100.0,
        "billing": True,
    }
    base.update(fields)
    return OrderRec(**base)


class _Wallets:
    """The one thing exhaustion_times asks of a repository: a user's wallet, if any."""

    def __init__(self, balances: dict[tuple[int, str], float]) -> None:
        self.balances = balances

    def get_wallet(self, user_id: int, currency: str) -> WalletRec | None:
        balance = self.balances.get((user_id, currency))
        if balance is None:
            return None
        return WalletRec(user_id, currency, balance, deposit="", withdrawal_fee=0.0)


def test_an_order_that_is_not_billing_owes_nothing_however_long() -> None:
    """A paused or ended order accrues no debit, whatever the time."""
    paused = _record(billing=False)
    assert (unbilled(paused, 10_000.0), lazy_spend(paused, 10_000.0)) == (0.0, 0.0)


def test_a_billing_order_without_a_wallet_runs_dry_at_once() -> None:
    """No wallet counts as an empty one: it is exhausted where the order was billed to."""
    times = exhaustion_times(_Wallets({}), [_record(billed_until=100.0)])  # type: ignore[arg-type]
    assert times == [(100.0, 7, "bitcoin")]


def test_a_group_charging_nothing_never_runs_dry_and_the_others_still_do() -> None:
    """Orders that charge nothing give no exhaustion time; other wallets are still computed."""
    free = _record(user_id=7, price=0.0)
    paying = _record(id=2, user_id=8, billed_until=0.0)
    wallets = _Wallets({(7, "bitcoin"): 1.0, (8, "bitcoin"): PRICE})
    times = exhaustion_times(wallets, [free, paying])  # type: ignore[arg-type]
    assert times == [(pytest.approx(86400.0), 8, "bitcoin")]


class _Debits:
    """A repository that only records debits."""

    def __init__(self) -> None:
        self.debits: list[tuple[int, str, float]] = []

    def debit(self, user_id: int, currency: str, amount: float) -> None:
        self.debits.append((user_id, currency, amount))


def test_running_time_adds_up_across_charges() -> None:
    """Each charge adds the seconds since the last one; a fresh order has run none."""
    order = _record(billed_until=100.0)
    fresh = run_seconds(order)
    repo = _Debits()
    accrue(repo, order, 400.0)  # type: ignore[arg-type]
    accrue(repo, order, 700.0)  # type: ignore[arg-type]
    assert (fresh, run_seconds(order), order.billed_until) == (0.0, 600.0, 700.0)


def test_the_creation_fee_is_taken_once_and_only_when_there_is_one() -> None:
    """Charging the fee twice debits it once; an order without a fee is never debited."""
    repo = _Debits()
    with_fee = _record(creation_fee=0.0001)
    charge_creation_fee(repo, with_fee)  # type: ignore[arg-type]
    charge_creation_fee(repo, with_fee)  # type: ignore[arg-type]
    charge_creation_fee(repo, _record(creation_fee=0.0))  # type: ignore[arg-type]
    assert (repo.debits, creation_fee_charged(with_fee)) == ([(7, "bitcoin", 0.0001)], 0.0001)


def test_a_creation_fee_falls_due_only_for_a_running_order_that_owes_one() -> None:
    """Due CREATION_FEE_AFTER seconds of running after its start; never for a paused order,
    one without a fee, or one that paid."""
    running = _record(creation_fee=0.0001, billed_until=100.0)
    paid = _record(creation_fee=0.0001, extra={FEE_PAID_KEY: True})
    others = [_record(creation_fee=0.0001, billing=False), _record(creation_fee=0.0), paid]
    assert (creation_fee_due(running), [creation_fee_due(o) for o in others]) == (
        100.0 + CREATION_FEE_AFTER,
        [None, None, None],
    )
