"""``clore.market.cache``: the marketplace and USD rates kept briefly on disk, per endpoint."""

from __future__ import annotations

import stat
from typing import Any

from clore import Clore, Server, SpotMarket
from clore.market.cache import RATES_TTL, cache_path, invalidate, load
from clore.sandbox import Sandbox


class Counting:
    """A client that counts the requests the cache makes (``MarketClient``)."""

    def __init__(self, client: Clore, *, keyed: bool = True) -> None:
        self.client = client
        self.keyed = keyed
        self.calls: list[str] = []

    @property
    def has_api_key(self) -> bool:
        return self.keyed

    def marketplace(self) -> list[Server]:
        self.calls.append("marketplace")
        return self.client.marketplace()

    def spot_marketplace(self, server_id: int) -> SpotMarket:
        self.calls.append("spot_marketplace")
        return self.client.spot_marketplace(server_id)


def _load(client: Counting, now: float, **kwargs: Any) -> Any:
    return load(client, endpoint="http://sandbox.test/v1", now=now, **kwargs)


def test_a_listing_is_reused_within_its_age_then_fetched_again(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """Within ``max_age`` the cached listing and rates are used; after it, one new request."""
    client = Counting(clore_client)
    first = _load(client, 1000.0, max_age=30)
    again = _load(client, 1030.0, max_age=30)
    later = _load(client, 1031.0, max_age=30)
    assert (first.cached, again.cached, later.cached) == (False, True, False)
    assert client.calls == ["marketplace", "spot_marketplace", "marketplace"]
    assert [s.id for s in again.servers] == [s.id for s in first.servers]
    assert first.rates is not None and later.rates == first.rates


def test_refresh_fetches_both_and_rates_outlive_the_listing(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """``refresh`` fetches listing and rates; cached rates serve until RATES_TTL has passed."""
    client = Counting(clore_client)
    _load(client, 1000.0, refresh=True)
    _load(client, 1000.0 + RATES_TTL, max_age=0)
    _load(client, 1001.0 + RATES_TTL, max_age=0)
    assert client.calls == [
        "marketplace",
        "spot_marketplace",
        "marketplace",
        "marketplace",
        "spot_marketplace",
    ]


def test_invalidate_drops_the_listing_and_keeps_the_rates(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """After ``invalidate`` the next load fetches the marketplace but not the rates."""
    client = Counting(clore_client)
    _load(client, 1000.0)
    invalidate("http://sandbox.test/v1")
    data = _load(client, 1001.0)
    assert (client.calls, data.cached, data.rates is not None) == (
        ["marketplace", "spot_marketplace", "marketplace"],
        False,
        True,
    )


def test_without_a_key_there_are_no_rates_and_the_note_says_why(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """spot_marketplace needs a key: without one no rates are fetched, and the note says so."""
    client = Counting(clore_client, keyed=False)
    data = _load(client, 1000.0)
    assert (client.calls, data.rates, data.rates_note) == (
        ["marketplace"],
        None,
        "spot_marketplace needs an API key",
    )


def test_the_cache_file_is_per_endpoint_owner_only_and_a_garbled_one_is_a_miss(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """Each endpoint has its own 0600 file; one that does not decode is fetched anew."""
    client = Counting(clore_client)
    _load(client, 1000.0, rates=False)
    path = cache_path("http://sandbox.test/v1")
    assert cache_path("http://other.test/v1") != path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("{not json", encoding="utf-8")
    data = _load(client, 1001.0, rates=False)
    assert (data.cached, client.calls) == (False, ["marketplace", "marketplace"])


def test_server_finds_a_listed_server_or_none(sandbox: Sandbox, clore_client: Clore) -> None:
    """``MarketData.server(id)`` is the listed server, None for an id not listed."""
    data = _load(Counting(clore_client), 1000.0, rates=False)
    first = data.servers[0]
    assert (data.server(first.id), data.server(10**12)) == (first, None)
