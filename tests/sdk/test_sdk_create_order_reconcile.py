"""How create_order finds its own order in my_orders, and what it says when it cannot.

Run against the in-process sandbox: the world is changed in the middle of one call by an
action run just before the n-th request to an endpoint reaches the sandbox (another
rental of the same account, an order ended meanwhile; ``_stub.sandbox_hooks``), and the
sandbox's faults stand for a lost or spoiled answer. Found by mutation testing of ``clore._flows``.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Iterator

import pytest

import clore
from _stub.sandbox_hooks import (
    IMAGE,
    Hooks,
    demo_user,
    free_servers,
    hooked_client,
    lowest_spot_bid,
    rent_directly,
)
from clore import Clore
from clore._flows import SPOT_EXTRA_POLLS, SPOT_POLL_SPACING
from clore._pacing import MAX_SPOT_ENTRIES
from clore._wire import CancelOrderRequest
from clore.sandbox import Sandbox


@pytest.fixture
def hooks(sandbox: Sandbox) -> Hooks:
    return Hooks(sandbox)


@pytest.fixture
def client(sandbox: Sandbox, hooks: Hooks) -> Iterator[Clore]:
    with hooked_client(sandbox, hooks) as c:
        yield c


# --------------------------------------------------------------------------- which order is ours


def test_a_concurrent_order_on_another_server_is_not_taken_for_ours(
    sandbox: Sandbox, hooks: Hooks, client: Clore
) -> None:
    """An order the same account placed meanwhile on another server is never returned."""
    mine, other = free_servers(sandbox)[:2]
    placed: list[int] = []
    # After our create_order is answered, before the check: a rental from another session.
    hooks.before(
        "create_order",
        1,
        lambda: hooks.before("my_orders", 1, lambda: placed.append(rent_directly(sandbox, other))),
    )
    order = client.create_order(mine, IMAGE)
    assert (order.si, order.id != placed[0]) == (mine, True)


def end_live_order_on(sandbox: Sandbox, server_id: int) -> None:
    """Cancel the demo user's live order on ``server_id`` without a request."""
    user = demo_user(sandbox)
    (live,) = [
        v.order for v in sandbox.backend.my_orders(user, False) if v.order.server_id == server_id
    ]
    sandbox.backend.cancel_order(user, CancelOrderRequest(id=live.id))


def test_an_order_that_ended_before_the_check_is_still_found(
    sandbox: Sandbox, hooks: Hooks, client: Clore
) -> None:
    """A rental that ended right after it began is found among the completed orders."""
    server = free_servers(sandbox)[0]
    # Registered as create_order is sent: runs before the first check after it.
    hooks.before(
        "create_order",
        1,
        lambda: hooks.before("my_orders", 1, lambda: end_live_order_on(sandbox, server)),
    )
    order = client.create_order(server, IMAGE)
    assert (order.si, order.expired) == (server, True)


def test_an_older_ended_order_on_the_server_is_not_taken_for_a_lost_one(
    sandbox: Sandbox, client: Clore
) -> None:
    """When the first send did nothing, an ended order of ours on that server from before is
    not mistaken for it: the request is sent again and the new order returned."""
    server = free_servers(sandbox)[0]
    old = rent_directly(sandbox, server)
    sandbox.set_server(server, rented=False)  # the old rental is over
    sandbox.inject_fault("create_order", "http_500")  # nothing rented
    order = client.create_order(server, IMAGE)
    assert (order.si, order.id != old, order.expired) == (server, True, False)


# --------------------------------------------------------------------------- spot bids


def test_a_spot_bid_is_returned_and_remembered_even_with_a_full_spot_history(
    sandbox: Sandbox, client: Clore
) -> None:
    """A new spot order is noted although my_orders could not add it to a full history: a
    second lowering right after the first is refused locally, without a request."""
    for stale in range(MAX_SPOT_ENTRIES):  # orders seen long ago fill the history
        client._ctx.pacer.note_bid(10_000_000 + stale, 1.0, 0.0)
    server = free_servers(sandbox, spot=True)[0]
    bid = 2 * lowest_spot_bid(sandbox, server)
    order = client.create_order(server, IMAGE, order_type="spot", spotprice=bid)
    client.set_spot_price(order.id, bid * 0.95)
    with pytest.raises(clore.SpotPriceLoweringTooSoonError) as info:
        client.set_spot_price(order.id, bid * 0.9)
    assert (order.spot, order.si, info.value.local) == (True, server, True)


def test_a_spot_bid_with_a_lost_answer_is_looked_up_at_once_then_spaced(
    sandbox: Sandbox, hooks: Hooks, client: Clore
) -> None:
    """A bid whose outcome is unknown is looked up one pacing interval after the failure,
    then SPOT_POLL_SPACING apart; it is never sent twice."""
    server = free_servers(sandbox, spot=True)[0]
    bid = 2 * lowest_spot_bid(sandbox, server)
    sandbox.inject_fault("create_order", "timeout")  # nothing placed
    with pytest.raises(clore.OrderUnconfirmedError):
        client.create_order(server, IMAGE, order_type="spot", spotprice=bid)
    (sent,) = hooks.sent("create_order")
    before = [at for at in hooks.sent("my_orders") if at < sent]
    checks = [at for at in hooks.sent("my_orders") if at > sent]
    step = sent - before[-1]  # one pacing interval, as the sandbox saw it
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(checks)]
    expected = [SPOT_POLL_SPACING] * (len(checks) - 1)
    assert (round(checks[0] - sent, 6), len(checks), gaps) == (
        round(step, 6),
        3 + SPOT_EXTRA_POLLS,
        expected,
    )


# --------------------------------------------------------------------------- pauses


@pytest.fixture
def unpaced(sandbox_factory: Callable[..., Sandbox]) -> Iterator[tuple[Sandbox, Hooks, Clore]]:
    """A sandbox without rate limits and a client that paces nothing."""
    sandbox = sandbox_factory(db=":memory:", seed="snapshot", rate_limit=False)
    hooks = Hooks(sandbox)
    with hooked_client(sandbox, hooks, clore.Pacing.disabled()) as c:
        yield sandbox, hooks, c


def test_without_pacing_the_checks_after_a_code_0_follow_each_other_at_once(
    unpaced: tuple[Sandbox, Hooks, Clore],
) -> None:
    """After a code-0 answer without an order, my_orders is asked three times with no pause
    of create_order's own (pacing alone spaces them)."""
    sandbox, hooks, client = unpaced
    server = free_servers(sandbox)[0]
    sandbox.inject_fault("create_order", "phantom_success")
    with pytest.raises(clore.OrderUnconfirmedError, match="answered code 0 but no new order"):
        client.create_order(server, IMAGE)
    checks = hooks.sent("my_orders")[1:]
    assert [b - a for a, b in itertools.pairwise(checks)] == [0.0, 0.0]


def test_without_pacing_an_uncertain_on_demand_send_is_checked_without_pauses(
    unpaced: tuple[Sandbox, Hooks, Clore],
) -> None:
    """After a lost on-demand answer the checks of my_orders come at once, one after another."""
    sandbox, hooks, client = unpaced
    server = free_servers(sandbox)[0]
    sandbox.inject_fault("create_order", "timeout")
    sandbox.inject_fault("create_order", "timeout")
    sandbox.inject_fault("create_order", "timeout")
    sandbox.inject_fault("create_order", "timeout")
    with pytest.raises(clore.OrderUnconfirmedError):
        client.create_order(server, IMAGE)
    first_lookup = hooks.sent("my_orders")[1:4]
    assert [b - a for a, b in itertools.pairwise(first_lookup)] == [0.0, 0.0]


# --------------------------------------------------------------------------- what it says


def test_each_attempts_outcome_is_named_in_the_may_exist_message(
    sandbox: Sandbox, hooks: Hooks, client: Clore
) -> None:
    """Timed out, then refused (someone else rented the server meanwhile): both attempts are
    named, in order, and the refusal is raised as 'may exist'."""
    server = free_servers(sandbox)[0]
    sandbox.inject_fault("create_order", "timeout")
    hooks.before("create_order", 2, lambda: sandbox.set_server(server, rented=True))
    with pytest.raises(clore.OrderUnconfirmedError) as info:
        client.create_order(server, IMAGE)
    assert re.search(
        rf"^create_order on server {server}: attempt 1 timed out \(.+\); "
        r"attempt 2 refused \(.+\); no new order in my_orders after 3 check\(s\)",
        str(info.value),
    )


def test_a_garbled_answer_is_an_unknown_outcome_in_the_message(
    sandbox: Sandbox, client: Clore
) -> None:
    """A body that is not JSON is reported as 'outcome unknown', not as a refusal."""
    server = free_servers(sandbox)[0]
    sandbox.inject_fault("create_order", "garbled")
    with pytest.raises(clore.OrderUnconfirmedError) as info:
        client.create_order(server, IMAGE)
    assert re.search(r": attempt 1 outcome unknown \(.+\); no new order", str(info.value))


def test_an_unreachable_my_orders_after_a_doubt_names_the_attempt_then_the_check(
    sandbox: Sandbox, hooks: Hooks, client: Clore
) -> None:
    """When my_orders fails after a dropped answer, the message names the attempt, then why
    the check failed."""
    server = free_servers(sandbox)[0]
    sandbox.inject_fault("create_order", "drop_after_commit")
    hooks.before("create_order", 1, lambda: sandbox.inject_fault("my_orders", "http_500", count=20))
    with pytest.raises(clore.OrderUnconfirmedError) as info:
        client.create_order(server, IMAGE)
    assert re.search(
        rf"^create_order on server {server}: attempt 1 connection dropped \(.+\); could not "
        r"check my_orders \(.+\); the order may exist$",
        str(info.value),
    )


def test_an_unreachable_my_orders_after_a_code_0_says_so_alone(
    sandbox: Sandbox, hooks: Hooks, client: Clore
) -> None:
    """After a code-0 answer there is no doubtful attempt to name: the message starts with
    why my_orders could not be checked."""
    server = free_servers(sandbox)[0]
    sandbox.inject_fault("create_order", "phantom_success")
    hooks.before("create_order", 1, lambda: sandbox.inject_fault("my_orders", "http_500", count=20))
    with pytest.raises(clore.OrderUnconfirmedError) as info:
        client.create_order(server, IMAGE)
    assert re.search(
        rf"^create_order on server {server}: could not check my_orders \(.+\); "
        r"the order may exist$",
        str(info.value),
    )


def test_each_lookup_is_logged(
    sandbox: Sandbox, client: Clore, caplog: pytest.LogCaptureFixture
) -> None:
    """A doubtful attempt logs what it saw before my_orders is checked, and the result."""
    server = free_servers(sandbox)[0]
    sandbox.inject_fault("create_order", "timeout_after_commit")
    with caplog.at_level(logging.DEBUG, logger="clore"):
        order = client.create_order(server, IMAGE)
    assert any(
        re.fullmatch(r"create_order: attempt 1 timed out \(.+\); checking my_orders", m)
        for m in caplog.messages
    )
    assert f"create_order: server {server} -> order {order.id}" in caplog.messages
