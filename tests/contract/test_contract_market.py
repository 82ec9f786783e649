"""Contract: the read endpoints — marketplace, spot market, fees, wallets — and their units."""

from __future__ import annotations

from datetime import timedelta

import pytest
from contract_targets import CURRENCY, Target, cheapest

from clore import CURRENCIES, AuthenticationError, Server, ServerNotFoundError


def test_marketplace_lists_servers_with_hours_and_per_day_prices(target: Target) -> None:
    """marketplace returns Server records: mrl in hours, prices per day per currency."""
    servers = target.client().marketplace()
    assert servers and all(isinstance(s, Server) for s in servers)
    assert len({s.id for s in servers}) == len(servers)
    assert all(set(s.allowed_coins) <= set(CURRENCIES) for s in servers)
    server = cheapest(target.client())
    assert server.max_rental == timedelta(hours=float(server.mrl))
    day = server.price_per_day(CURRENCY)
    assert day is not None and day > 0
    assert server.price_per_hour(CURRENCY) == pytest.approx(day / 24)
    assert not server.rented and server.available


def test_marketplace_works_without_a_key(target: Target) -> None:
    """marketplace is public: a client without a key sees the same servers."""
    anonymous = target.client(anonymous=True)
    assert not anonymous.has_api_key
    assert {s.id for s in anonymous.marketplace()} == {s.id for s in target.client().marketplace()}


def test_marketplace_shows_rented_servers(target: Target) -> None:
    """Servers held by other renters are listed with rented true."""
    servers = target.client().marketplace()
    assert any(s.rented for s in servers) and any(not s.rented for s in servers)


def test_spot_marketplace_reports_mrl_in_seconds(target: Target) -> None:
    """spot_marketplace: the server's mrl in seconds, its spot minimum, USD rates, no offers."""
    client = target.client()
    server = cheapest(client, spot=True)
    market = client.spot_marketplace(server.id)
    assert market.server.mrl == server.mrl * 3600
    assert market.server.max_rental == server.max_rental
    assert market.server.min_pricing[CURRENCY] == server.price_per_day(CURRENCY, spot=True)
    assert market.server.online and market.server.visibility == "public"
    assert market.offers == [] and market.winning is None
    assert set(market.currency_rates_in_usd) == set(CURRENCIES)
    assert target.client(anonymous=True).spot_marketplace(server.id).server.mrl == market.server.mrl


def test_spot_marketplace_of_an_unknown_server_raises_server_not_found(target: Target) -> None:
    """An id no server has: ServerNotFoundError naming the id."""
    client = target.client()
    unknown = max(s.id for s in client.marketplace()) + 1000
    with pytest.raises(ServerNotFoundError) as caught:
        client.spot_marketplace(unknown)
    assert caught.value.server_id == unknown


def test_renter_fees_report_percentages_and_creation_fees(target: Target) -> None:
    """renter_fees: 10% on demand, 2.5% spot, and a positive creation fee per currency."""
    fees = target.client().renter_fees()
    assert fees.fee_percent("on-demand", CURRENCY) == 10.0
    assert fees.fee_percent("spot", CURRENCY) == 2.5
    assert all(fees.creation_fee("on-demand", c) > 0 for c in CURRENCIES)
    assert all(fees.creation_fee("spot", c) > 0 for c in CURRENCIES)


def test_poh_balance_is_a_number(target: Target) -> None:
    """poh_balance answers a balance (the sandbox has no staking: 0)."""
    assert target.client().poh_balance().balance == 0


def test_wallets_hold_the_demo_balances(target: Target) -> None:
    """The demo user has one wallet per currency, funded as documented, with deposit data."""
    wallets = {w.name: w for w in target.client().wallets()}
    assert set(wallets) == set(CURRENCIES)
    assert wallets["bitcoin"].balance == pytest.approx(0.1)
    assert wallets["CLORE-Blockchain"].balance == pytest.approx(200000)
    assert wallets["USD-Blockchain"].balance == pytest.approx(500)
    assert all(w.deposit and (w.withdrawal_fee or 0) > 0 for w in wallets.values())


def test_a_new_user_has_the_balances_it_was_given(target: Target) -> None:
    """create_user's balances are what wallets reports; other currencies hold 0."""
    key, _ = target.create_user("alice", {"bitcoin": 0.5})
    balances = {w.name: w.balance for w in target.client(key).wallets()}
    assert balances == {"bitcoin": 0.5, "CLORE-Blockchain": 0.0, "USD-Blockchain": 0.0}


def test_account_endpoints_need_a_key(target: Target) -> None:
    """Without a key, account endpoints (renter_fees included) raise AuthenticationError
    locally, before anything is sent."""
    anonymous = target.client(anonymous=True)
    for call in (
        anonymous.wallets,
        anonymous.my_orders,
        anonymous.my_servers,
        anonymous.renter_fees,
    ):
        with pytest.raises(AuthenticationError) as caught:
            call()
        assert caught.value.status_code is None  # refused locally, nothing sent
