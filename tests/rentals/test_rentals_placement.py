"""``clore.rentals``: ranking the candidates and placing one order, moving on only after a
lost race, against the in-process sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import clore
from clore import Clore, OrderUnconfirmedError, ParameterError, ServerAlreadyRentedError
from clore.market import PriceContext, parse_filters
from clore.rentals import Candidate, Skipped, cheapest, payable, place, race_lost
from clore.rentals.choice import Floors
from clore.sandbox import Sandbox
from clore.workflows import RentSpec

IMAGE = "cloreai/ubuntu22.04"


class Recording:
    """A client that records each create_order and runs ``effect(server_id)`` before the
    first ``times`` of them (a rival's move between the listing and the order)."""

    def __init__(
        self, client: Clore, effect: Callable[[int], None] | None = None, times: int = 0
    ) -> None:
        self.client = client
        self.effect = effect
        self.pending = times
        self.attempted: list[int] = []

    def create_order(self, server_id: int, *args: Any, **kwargs: Any) -> clore.Order:
        self.attempted.append(server_id)
        if self.pending and self.effect is not None:
            self.pending -= 1
            self.effect(server_id)
        return self.client.create_order(server_id, *args, **kwargs)


def _candidates(client: Clore, *words: str, spot: bool = False) -> list[Candidate]:
    ranked = cheapest(
        client.marketplace(),
        parse_filters(words or ("gpus>=1",)),
        PriceContext("bitcoin"),
        spot=spot,
    )
    return [Candidate(s.id, s) for s in ranked]


def test_cheapest_ranks_available_payable_matches_by_price(clore_client: Clore) -> None:
    """Only available servers that take the currency, list a price and pass the quality
    floors, cheapest first."""
    servers = clore_client.marketplace()
    ranked = cheapest(servers, parse_filters(["gpus>=1"]), PriceContext("bitcoin"))
    prices = [s.price_per_day("bitcoin") for s in ranked]
    expected = {
        s.id
        for s in servers
        if not s.rented and s.gpu_count >= 1 and payable(s, "bitcoin") and Floors().admits(s)
    }
    assert ({s.id for s in ranked}, prices) == (expected, sorted(prices))  # type: ignore[type-var]


def test_cheapest_for_spot_ranks_by_the_spot_minimum(clore_client: Clore) -> None:
    """With ``spot`` the ranking is the spot minimum and every candidate lists one."""
    ranked = cheapest(
        clore_client.marketplace(), parse_filters([]), PriceContext("bitcoin"), spot=True
    )
    minimums = [s.price_per_day("bitcoin", spot=True) for s in ranked]
    assert ranked and None not in minimums and minimums == sorted(minimums)  # type: ignore[type-var]


def test_the_first_candidate_that_takes_the_order_gets_it(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """No race: one attempt, on the first candidate, and nothing skipped."""
    candidates = _candidates(clore_client)
    client = Recording(clore_client)
    placed = place(client, candidates, RentSpec(image=IMAGE), tries=3)
    assert (client.attempted, placed.order.si, placed.skipped) == (
        [candidates[0].server_id],
        candidates[0].server_id,
        [],
    )


def test_a_lost_race_moves_on_to_the_next_candidate(sandbox: Sandbox, clore_client: Clore) -> None:
    """A server rented meanwhile is skipped with the API's reason; the next one is rented."""
    candidates = _candidates(clore_client)
    first, second = candidates[0], candidates[1]
    client = Recording(clore_client, lambda sid: sandbox.set_server(sid, rented=True), times=1)
    heard: list[tuple[int, Skipped, int]] = []
    placed = place(
        client,
        candidates,
        RentSpec(image=IMAGE),
        tries=3,
        on_lost=lambda c, s, n: heard.append((c.server_id, s, n.server_id)),
    )
    lost = Skipped(first.server_id, "server-already-rented")
    assert (placed.order.si, placed.skipped, heard) == (
        second.server_id,
        [lost],
        [(first.server_id, lost, second.server_id)],
    )


def test_after_tries_lost_races_the_last_refusal_is_raised(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """Every candidate tried was taken: no more than ``tries`` attempts, then the refusal."""
    candidates = _candidates(clore_client)
    client = Recording(clore_client, lambda sid: sandbox.set_server(sid, rented=True), times=9)
    with pytest.raises(ServerAlreadyRentedError):
        place(client, candidates, RentSpec(image=IMAGE), tries=2)
    assert client.attempted == [c.server_id for c in candidates[:2]]
    assert clore_client.my_orders() == []


def test_an_order_that_may_exist_never_moves_on(sandbox: Sandbox, clore_client: Clore) -> None:
    """A spot bid whose answer was lost may exist: the placement stops, no other server."""
    candidates = _candidates(clore_client, spot=True)
    bid = (candidates[0].listed_price("bitcoin", spot=True) or 0) * 2
    sandbox.inject_fault("create_order", "timeout")
    client = Recording(clore_client)
    with pytest.raises(OrderUnconfirmedError):
        place(client, candidates, RentSpec(image=IMAGE, order_type="spot"), bid=bid, tries=3)
    assert client.attempted == [candidates[0].server_id]


def test_bad_settings_are_refused_before_anything_is_asked_or_sent(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """A bad setting raises ParameterError before the first ``before`` and any request."""
    candidates = _candidates(clore_client)
    asked: list[int] = []
    client = Recording(clore_client)
    with pytest.raises(ParameterError, match="ssh_password"):
        place(
            client,
            candidates,
            RentSpec(image=IMAGE, ssh_password="not ok!"),
            tries=2,
            before=lambda c: asked.append(c.server_id),
        )
    assert (asked, client.attempted) == ([], [])


def test_before_runs_ahead_of_each_attempt_and_may_stop_it(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """An exception from ``before`` (a declined confirmation) stops before anything is sent."""
    candidates = _candidates(clore_client)
    client = Recording(clore_client)

    def decline(candidate: Candidate) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        place(client, candidates, RentSpec(image=IMAGE), before=decline)
    assert client.attempted == []


def test_race_lost_is_only_a_refusal_another_server_may_not_meet() -> None:
    """Taken, repriced or offline servers are lost races; a may-exist order never is."""
    from clore import PriceChangedError, ServerOfflineError, TooLowPriceError

    errors = [
        ServerAlreadyRentedError(code=6, error="server-already-rented"),
        PriceChangedError(code=6, error="price-changed"),
        ServerOfflineError(code=6, error="server-offline"),
        TooLowPriceError(code=6, error="too_low_price"),
        OrderUnconfirmedError("may exist"),
    ]
    assert [race_lost(e) for e in errors] == [True, True, True, False, False]


def test_lock_price_sends_the_listed_price_and_preview_is_what_create_sends(
    clore_client: Clore,
) -> None:
    """``RentSpec.preview`` is ``clore.preview_create_order`` of the same arguments;
    ``lock_price=False`` leaves required_price out."""
    spec = RentSpec(image=IMAGE, ports={"22": "tcp"})
    locked = spec.preview(7, 0.5)
    unlocked = RentSpec(image=IMAGE, ports={"22": "tcp"}, lock_price=False).preview(7, 0.5)
    expected = clore.preview_create_order(7, IMAGE, ports={"22": "tcp"}, required_price=0.5)
    assert (locked, unlocked.required_price) == (expected, None)
