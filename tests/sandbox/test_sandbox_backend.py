"""Backend unit tests: the domain rules, called directly (no HTTP, no handlers)."""

from __future__ import annotations

import math

import pytest

from clore._clock import ManualClock
from clore._wire import CancelOrderRequest, CreateOrderRequest, SetSpotPriceRequest
from clore.sandbox import ApiError, Sandbox
from clore.sandbox.backend import Backend
from clore.sandbox.backend.rules import CREATION_FEES, PROVISIONING_DELAY

BTC_DAY = 0.0864  # the small market's on-demand price: 1e-6 BTC per second


def order(server: int, kind: str = "on-demand", **fields: object) -> CreateOrderRequest:
    body: dict[str, object] = {
        "currency": "bitcoin",
        "image": "ubuntu:22.04",
        "renting_server": server,
        "type": kind,
    }
    body.update(fields)
    return CreateOrderRequest(**body)  # type: ignore[arg-type]


def error_of(call: object) -> tuple[int, str | None]:
    assert isinstance(call, ApiError)
    return call.code, call.error


def fails(fn: object, *args: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value


@pytest.fixture
def backend(small: Sandbox) -> Backend:
    return small.backend


@pytest.fixture
def renter(small: Sandbox) -> int:
    return small.create_user("renter", {"bitcoin": 1.0, "CLORE-Blockchain": 10000})[1]


def balance(backend: Backend, user: int, currency: str = "bitcoin") -> float:
    return next(w.balance for w in backend.wallets(user) if w.currency == currency)


def test_on_demand_order_takes_the_server(backend: Backend, renter: int) -> None:
    """An on-demand order runs at the listed price and marks the server rented."""
    oid = backend.create_order(renter, order(1))
    (view,) = backend.my_orders(renter, False)
    assert (view.order.id, view.order.price, view.order.spot) == (oid, BTC_DAY, False)
    assert view.order.mrl == 24 * 3600
    assert backend.my_servers(10)[0].rented is True


def test_second_on_demand_order_is_refused(small: Sandbox, backend: Backend, renter: int) -> None:
    """A rented server answers server-already-rented, whoever asks."""
    backend.create_order(renter, order(1))
    other = small.create_user("other", {"bitcoin": 1.0})[1]
    assert fails(backend.create_order, other, order(1)).error == "server-already-rented"
    assert fails(backend.create_order, renter, order(3)).error == "server-already-rented"


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (order(2), "currency-not-allowed"),
        (order(1, required_price=BTC_DAY * 1.01), "price-changed"),
        (order(1, "spot", spotprice=BTC_DAY / 4), "too_low_price"),
    ],
)
def test_create_order_errors(
    backend: Backend, renter: int, request_: CreateOrderRequest, error: str
) -> None:
    """Each refusal carries the reference's error string and rents nothing."""
    assert (
        fails(backend.create_order, renter, request_).code,
        fails(backend.create_order, renter, request_).error,
    ) == (6, error)
    assert backend.my_orders(renter, True) == []


def test_offline_server_is_refused(small: Sandbox, backend: Backend, renter: int) -> None:
    """An offline server answers server-offline."""
    small.set_server(1, online=False)
    assert fails(backend.create_order, renter, order(1)).error == "server-offline"


def test_required_price_that_matches_is_accepted(backend: Backend, renter: int) -> None:
    """required_price equal to the listed price rents."""
    backend.create_order(renter, order(1, required_price=BTC_DAY))
    assert len(backend.my_orders(renter, False)) == 1


def test_not_enough_balance(small: Sandbox, backend: Backend) -> None:
    """A wallet that cannot pay the creation fee plus an hour answers not_enough_balance."""
    poor = small.create_user("poor", {"bitcoin": BTC_DAY / 24 * 0.5})[1]
    assert fails(backend.create_order, poor, order(1)).error == "not_enough_balance"
    assert balance(backend, poor) == pytest.approx(BTC_DAY / 48)


def test_unknown_server_and_bad_fields_are_code_2(backend: Backend, renter: int) -> None:
    """Invalid input (no such server, bad type, long password, two http ports) is code 2."""
    for bad in (
        order(999),
        order(1, "lease"),
        order(1, ssh_password="not alnum!"),
        order(1, ports={"22": "tcp", "80": "http", "81": "http"}),
        order(1, "spot"),
        order(1, spotprice=-1.0),
        CreateOrderRequest(currency="dogecoin", image="x", renting_server=1),
    ):
        assert fails(backend.create_order, renter, bad).code == 2


def test_creation_fee_and_renter_fee_are_charged(
    backend: Backend, renter: int, clock: ManualClock
) -> None:
    """The wallet pays the creation fee, then price plus 10% per second of running time."""
    backend.create_order(renter, order(1))
    assert balance(backend, renter) == pytest.approx(1.0 - CREATION_FEES["on_demand"]["bitcoin"])
    clock.advance(1000)
    (view,) = backend.my_orders(renter, False)
    assert view.spend == pytest.approx(1000 * 1e-6)
    expected = 1.0 - CREATION_FEES["on_demand"]["bitcoin"] - 1000 * 1e-6 * 1.10
    assert balance(backend, renter) == pytest.approx(expected)


def test_order_expires_at_ct_plus_mrl(small: Sandbox, backend: Backend, renter: int) -> None:
    """An order ends at exactly ct + mrl and stops costing money."""
    backend.create_order(renter, order(5))  # mrl 1 hour
    (view,) = backend.my_orders(renter, False)
    small.advance(7200)
    assert backend.my_orders(renter, False) == []
    (done,) = backend.my_orders(renter, True)
    assert done.order.ended and done.order.ended_at == view.order.ct + 3600
    assert done.spend == pytest.approx((view.order.ct + 3600 - view.order.billed_until) * 1e-6)
    assert backend.my_servers(11)[2].rented is False


def test_cancel_records_the_issue_and_frees_the_server(backend: Backend, renter: int) -> None:
    """cancel_order ends the order, keeps the issue text, and the server is free again."""
    oid = backend.create_order(renter, order(1))
    backend.cancel_order(renter, CancelOrderRequest(id=oid, issue="GPU 1 is missing"))
    (done,) = backend.my_orders(renter, True)
    assert (done.order.ended, done.order.issue) == (True, "GPU 1 is missing")
    backend.cancel_order(renter, CancelOrderRequest(id=oid))  # twice: no error, no change
    assert backend.my_orders(renter, True)[0].order.issue == "GPU 1 is missing"
    backend.create_order(renter, order(1))


def test_another_users_order_is_an_error_not_data(
    small: Sandbox, backend: Backend, renter: int
) -> None:
    """Cancelling or repricing someone else's order is code 2, the same as an unknown id."""
    oid = backend.create_order(renter, order(1))
    other = small.create_user("other", {"bitcoin": 1.0})[1]
    for call in (
        lambda: backend.cancel_order(other, CancelOrderRequest(id=oid)),
        lambda: backend.set_spot_price(other, SetSpotPriceRequest(order_id=oid, desired_price=1.0)),
        lambda: backend.cancel_order(other, CancelOrderRequest(id=999999)),
    ):
        with pytest.raises(ApiError) as info:
            call()
        assert (info.value.code, info.value.body()) == (2, {"code": 2})
    assert backend.my_orders(other, True) == []
    assert not backend.my_orders(renter, False)[0].order.ended


def test_provisioning_fills_endpoints_after_the_delay(
    backend: Backend, renter: int, clock: ManualClock
) -> None:
    """pub_cluster, tcp_ports and http_pub are empty until the provisioning delay passed;
    then they name loopback (a backend without machines: ports where nothing listens)."""
    backend.create_order(renter, order(1, ports={"22": "tcp", "8888": "http", "6006": "tcp"}))
    fresh = backend.my_orders(renter, False)[0].order
    assert (fresh.pub_cluster, fresh.tcp_ports, fresh.http_pub) == ([], [], None)
    clock.advance(PROVISIONING_DELAY)
    ready = backend.my_orders(renter, False)[0].order
    assert ready.pub_cluster == ["127.0.0.1"]
    assert [p.split(":")[0] for p in ready.tcp_ports] == ["22", "6006"]
    assert ready.http_port == "8888" and (ready.http_pub or "").startswith("127.0.0.1:")


def test_public_ports_are_unique_per_cluster_host(
    small: Sandbox, backend: Backend, clock: ManualClock
) -> None:
    """Orders behind one cluster host never share a public port."""
    users = [small.create_user(f"u{i}", {"bitcoin": 1.0})[1] for i in range(3)]
    for user, server in zip(users, (1, 4, 7), strict=True):  # ids 1, 4, 7: the same host
        backend.create_order(user, order(server, ports={"22": "tcp", "80": "tcp"}))
    clock.advance(PROVISIONING_DELAY)
    ports = [p.split(":")[1] for u in users for p in backend.my_orders(u, False)[0].order.tcp_ports]
    hosts = {backend.my_orders(u, False)[0].order.pub_cluster[0] for u in users}
    assert len(hosts) == 1 and len(set(ports)) == len(ports) == 6


def test_spot_highest_bid_is_active_and_outbid_offer_pauses(
    small: Sandbox, backend: Backend, renter: int, clock: ManualClock
) -> None:
    """The highest bid runs; an outbid offer waits without paying and resumes later."""
    low = backend.create_order(renter, order(4, "spot", spotprice=0.05))
    rival = small.create_user("rival", {"bitcoin": 1.0})[1]
    high = backend.create_order(rival, order(4, "spot", spotprice=0.06))
    market = backend.spot_marketplace(renter, 4)
    assert market is not None
    assert [(o.id, o.active, mine) for o, mine in market.offers] == [
        (high, True, False),
        (low, False, True),
    ]
    clock.advance(1000)
    paused_spend = backend.my_orders(renter, False)[0].spend
    clock.advance(1000)
    assert backend.my_orders(renter, False)[0].spend == paused_spend
    backend.cancel_order(rival, CancelOrderRequest(id=high))
    clock.advance(1000)
    assert backend.my_orders(renter, False)[0].order.active
    assert backend.my_orders(renter, False)[0].spend == pytest.approx(
        paused_spend + 0.05 * 1000 / 86400
    )


def test_bids_compare_in_usd_across_currencies(
    small: Sandbox, backend: Backend, renter: int
) -> None:
    """A CLORE bid worth more dollars beats a bitcoin bid."""
    btc = backend.create_order(renter, order(4, "spot", spotprice=0.05))  # ~3401 USD/day
    rival = small.create_user("rival", {"CLORE-Blockchain": 1e9})[1]
    clore_bid = backend.create_order(
        rival, order(4, "spot", currency="CLORE-Blockchain", spotprice=2e6)
    )  # ~5410 USD
    market = backend.spot_marketplace(None, 4)
    assert market is not None
    assert [(o.id, o.active) for o, _ in market.offers] == [(clore_bid, True), (btc, False)]


def test_on_demand_preempts_spot(small: Sandbox, backend: Backend, renter: int) -> None:
    """An on-demand order takes the server from the running spot offer."""
    offer = backend.create_order(renter, order(4, "spot", spotprice=0.05))
    other = small.create_user("other", {"bitcoin": 1.0})[1]
    backend.create_order(other, order(4))
    assert not backend.my_orders(renter, False)[0].order.active
    market = backend.spot_marketplace(None, 4)
    assert market is not None and [(o.id, o.active) for o, _ in market.offers] == [(offer, False)]


def test_end_outbid_setting_ends_outbid_offers(
    small: Sandbox, backend: Backend, renter: int
) -> None:
    """With the host's end_outbid setting, an outbid offer ends instead of pausing."""
    small.set_server(4, end_outbid=True)
    backend.create_order(renter, order(4, "spot", spotprice=0.05))
    rival = small.create_user("rival", {"bitcoin": 1.0})[1]
    backend.create_order(rival, order(4, "spot", spotprice=0.06))
    (done,) = backend.my_orders(renter, True)
    assert done.order.ended and done.order.end_reason == "outbid"


def test_set_spot_price_raises_at_once_and_limits_lowering(
    backend: Backend, renter: int, clock: ManualClock
) -> None:
    """Raising is immediate; lowering is capped at 10% and once per 600 s."""
    oid = backend.create_order(renter, order(4, "spot", spotprice=0.1))
    backend.set_spot_price(renter, SetSpotPriceRequest(order_id=oid, desired_price=0.2))
    assert backend.my_orders(renter, False)[0].order.price == 0.2
    too_far = fails(
        backend.set_spot_price, renter, SetSpotPriceRequest(order_id=oid, desired_price=0.15)
    )
    assert too_far.body() == {"code": 6, "error": "exceeded_max_step", "max_step": 0.02}
    backend.set_spot_price(renter, SetSpotPriceRequest(order_id=oid, desired_price=0.18))
    clock.advance(188)
    too_soon = fails(
        backend.set_spot_price, renter, SetSpotPriceRequest(order_id=oid, desired_price=0.17)
    )
    assert too_soon.body() == {
        "code": 6,
        "error": "can_lower_every_600_seconds",
        "time_to_lowering": 412,
    }
    backend.set_spot_price(
        renter, SetSpotPriceRequest(order_id=oid, desired_price=0.19)
    )  # raise: fine
    clock.advance(412)
    backend.set_spot_price(renter, SetSpotPriceRequest(order_id=oid, desired_price=0.171))
    low = fails(
        backend.set_spot_price, renter, SetSpotPriceRequest(order_id=oid, desired_price=0.01)
    )
    assert low.error == "too_low_price"


def test_empty_wallet_ends_orders_and_never_goes_negative(small: Sandbox, backend: Backend) -> None:
    """When the wallet runs dry the orders end at that moment; the balance stops at zero."""
    fee = CREATION_FEES["on_demand"]["bitcoin"]
    funds = fee * 2 + 2 * 3600 * 1.1e-6  # two orders, about one hour of both
    user = small.create_user("thrifty", {"bitcoin": funds})[1]
    backend.create_order(user, order(1))
    backend.create_order(user, order(4))
    small.advance(86400)
    orders = backend.my_orders(user, True)
    assert all(v.order.ended and v.order.end_reason == "balance" for v in orders)
    assert balance(backend, user) == 0.0
    spent = sum(v.spend * 1.1 + v.order.creation_fee for v in orders)
    assert spent == pytest.approx(funds, rel=1e-9)
    assert orders[0].order.ended_at == pytest.approx(orders[0].order.billed_until)


@pytest.mark.parametrize("step", [0.1234567, 1.7, 3.3333333, 7.77, 11.09])
def test_a_dry_wallet_shows_exactly_zero(small: Sandbox, clock: ManualClock, step: float) -> None:
    """Whatever the rounding of the last charge, a wallet that ran dry shows 0.0, not a residue.

    Regression: only a negative residue was cleared, so a live server (arbitrary float times)
    could show a dry wallet holding 2e-17 BTC.
    """
    fee = CREATION_FEES["on_demand"]["bitcoin"]
    for k in range(20):
        clock.advance(step)
        funds = fee + 3600 * 1.1e-6 * (1.01 + k / 7)
        user = small.create_user(f"thrifty-{k}", {"bitcoin": funds})[1]
        oid = small.backend.create_order(user, order(1))
        clock.advance(step * 3)
        small.advance(7 * 3600)
        (view,) = small.backend.my_orders(user, True)
        assert (view.order.id, view.order.end_reason) == (oid, "balance")
        assert balance(small.backend, user) == 0.0


def test_host_settings_change_the_marketplace(small: Sandbox, backend: Backend) -> None:
    """set_server_settings (both forms) changes price, currencies, mrl and visibility."""
    demo = small.backend.authenticate(small.demo_key)
    assert demo == 12
    backend.set_server_settings(
        demo, {"name": "server-6", "mrl": 48, "on_demand": 0.2, "spot": 0.1}
    )
    backend.set_server_settings(
        demo,
        {
            "name": "server-6",
            "CLORE-Blockchain_on_demand": 900,
            "enabled-USD-Blockchain": True,
            "USD-Blockchain_on_demand": 9.5,
        },
    )
    server, status = backend.server_config(demo, "server-6")
    assert (server.mrl, server.on_demand, server.spot, status) == (
        48,
        {"bitcoin": 0.2, "CLORE-Blockchain": 900, "USD-Blockchain": 9.5},
        {"bitcoin": 0.1, "CLORE-Blockchain": 250},
        0,
    )
    assert server.allowed_coins == ["bitcoin", "CLORE-Blockchain", "USD-Blockchain"]
    backend.set_server_settings(demo, {"name": "server-6", "availability": False})
    view = backend.marketplace(None, -1)
    assert [s.id for s in view.changed if s.listed] == [1, 2, 3, 4, 5, 7, 8]
    assert view.my_servers == []
    assert backend.marketplace(demo, view.rev).my_servers == [6, 7, 8]


def test_host_cannot_touch_other_hosts_servers(backend: Backend, renter: int) -> None:
    """server_config and set_server_settings only know the caller's own servers."""
    assert fails(backend.server_config, renter, "server-6").code == 2
    assert fails(backend.set_server_settings, renter, {"name": "server-6", "mrl": 1}).code == 2


def test_rental_status_reports_spot_and_on_demand(
    small: Sandbox, backend: Backend, renter: int
) -> None:
    """rental_status is 1 for a running spot offer and 2 for an on-demand order."""
    demo = 12
    oid = backend.create_order(renter, order(7, "spot", spotprice=0.05))
    assert backend.server_config(demo, "server-7")[1] == 1
    backend.cancel_order(renter, CancelOrderRequest(id=oid))
    backend.create_order(renter, order(7))
    assert backend.server_config(demo, "server-7")[1] == 2


def test_marketplace_feed_reports_only_changes(
    small: Sandbox, backend: Backend, renter: int
) -> None:
    """After a first full listing, only servers that changed come back."""
    first = backend.marketplace(None, -1)
    assert first.full and len(first.changed) == 8
    assert backend.marketplace(None, first.rev).changed == []
    backend.create_order(renter, order(1))
    later = backend.marketplace(None, first.rev)
    assert not later.full and [s.id for s in later.changed] == [1]
    small.reset()
    assert backend.marketplace(None, later.rev).full


def test_seeded_rented_servers_are_held_by_other_renters(sandbox: Sandbox) -> None:
    """The snapshot's rented flags become other renters' on-demand orders that end in time."""
    view = sandbox.backend.marketplace(None, -1)
    rented = [s for s in view.changed if s.rented]
    assert len(view.changed) == 3500 and len(rented) == 1917
    sandbox.advance(61 * 86400)  # longer than any seed mrl (1440 h)
    assert not any(s.rented for s in sandbox.backend.marketplace(None, -1).changed)


def test_spend_is_price_times_running_time_across_changes(
    backend: Backend, renter: int, clock: ManualClock
) -> None:
    """Spend follows each bid for exactly the time it was in force."""
    oid = backend.create_order(renter, order(4, "spot", spotprice=0.0864))
    clock.advance(100)
    backend.set_spot_price(renter, SetSpotPriceRequest(order_id=oid, desired_price=0.1728))
    clock.advance(50)
    spend = backend.my_orders(renter, False)[0].spend
    assert math.isclose(spend, 100 * 1e-6 + 50 * 2e-6, rel_tol=1e-9)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "server-6", "availability": None},
        {"name": "server-6", "mrl": None},
        {"name": "server-6", "enabled-bitcoin": None},
        {"name": "server-6", "on_demand": {"dogecoin": 1}},
        {"name": "server-6", "mrl": 0},
        {"name": "server-6", "bitcoin_spot": True},
        {"name": ""},
    ],
)
def test_host_settings_with_a_null_or_bad_value_are_invalid_input(
    small: Sandbox, backend: Backend, body: dict[str, object]
) -> None:
    """A setting sent as null, of the wrong type or out of range is code 2 (never taken
    as absent), in either body form."""
    demo = small.backend.authenticate(small.demo_key)
    assert demo is not None
    assert fails(backend.set_server_settings, demo, body).code == 2
