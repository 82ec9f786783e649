"""The edges of the agent's quotes (found by mutation testing): a token is bound to its
kind, arguments and price, lives exactly ``ttl`` seconds, is used up by any redeem, and a
quoted price may move by the tolerance and no more. Times from a fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clore import ManualClock
from clore.agent import QuoteBook, QuoteRefused
from clore.agent.quotes import binding, price_moved

T0 = 1_700_000_000.0
TTL = 120.0
ARGS: dict[str, Any] = {"server_id": 7, "image": "cuda", "ports": {"22": "tcp"}}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def book(clock: ManualClock) -> QuoteBook:
    return QuoteBook(clock.time, TTL)


def refused(book: QuoteBook, token: str | None, kind: str = "rent", **changes: Any) -> QuoteRefused:
    with pytest.raises(QuoteRefused) as caught:
        book.redeem(token, kind, {**ARGS, **changes})
    return caught.value


# --------------------------------------------------------------------------- binding


def test_a_binding_ignores_the_order_of_the_arguments() -> None:
    """The same arguments in another order bind the same hash."""
    again = dict(reversed(list(ARGS.items())))
    assert binding("rent", ARGS, 1.0) == binding("rent", again, 1.0)


def test_a_binding_changes_with_the_kind_the_arguments_and_the_price() -> None:
    """Every part of what was quoted is in the hash."""
    base = binding("rent", ARGS, 1.0)
    assert base != binding("job", ARGS, 1.0)
    assert base != binding("rent", {**ARGS, "server_id": 8}, 1.0)
    assert base != binding("rent", ARGS, 1.00000001)


def test_a_binding_rounds_the_price_to_the_apis_8_decimals() -> None:
    """A price differing past the 8th decimal is the same price."""
    assert binding("rent", ARGS, 0.5) == binding("rent", ARGS, 0.500000001)
    assert binding("rent", ARGS, 2) == binding("rent", ARGS, 2.0)


def test_a_binding_takes_values_json_does_not_know_as_text() -> None:
    """A path (or any value without a JSON form) binds by its text."""
    assert binding("job", {"dir": Path("/a")}, 1.0) == binding("job", {"dir": "/a"}, 1.0)
    assert binding("job", {"dir": Path("/a")}, 1.0) != binding("job", {"dir": Path("/b")}, 1.0)


# --------------------------------------------------------------------------- price


@pytest.mark.parametrize(
    ("current", "moved"),
    [(8.0, False), (10.0, False), (6.0, False), (10.0001, True), (5.9999, True), (12.0, True)],
)
def test_a_price_may_move_by_the_tolerance_either_way(current: float, moved: bool) -> None:
    """Quoted 8 with a 25 % tolerance: 6 to 10 is the quoted price, outside it moved."""
    assert moved == price_moved(8.0, current, 0.25)


def test_no_tolerance_means_any_change_moved_the_price() -> None:
    """Tolerance 0: only the quoted price itself."""
    assert (price_moved(8.0, 8.0, 0.0), price_moved(8.0, 8.0001, 0.0)) == (False, True)


@pytest.mark.parametrize(
    ("quoted", "current", "moved"),
    [(0.0, 0.0, False), (0.0, 0.0001, True), (0.5, 0.505, False), (0.5, 0.52, True)],
)
def test_a_free_quote_moves_with_any_price_and_a_small_one_by_the_tolerance(
    quoted: float, current: float, moved: bool
) -> None:
    """Quoted 0: any price is a move; a price under one unit is compared by the 2 %."""
    assert moved == price_moved(quoted, current, 0.02)


# --------------------------------------------------------------------------- issue


def test_a_quote_holds_its_token_kind_price_times_and_details(
    book: QuoteBook, clock: ManualClock
) -> None:
    """A random URL-safe token of at least 18 bytes, expiring ``ttl`` after issue."""
    details = {"cost": {"max_cost": 10.5}}
    quote = book.issue("rent", ARGS, 2, details=details)
    other = book.issue("rent", ARGS, 2)
    assert quote.token != other.token and len(quote.token) >= 24
    assert (
        quote.kind,
        quote.price,
        quote.issued_at,
        quote.expires_at,
        quote.state,
    ) == ("rent", 2.0, T0, T0 + TTL, "open")
    assert isinstance(quote.price, float)
    assert (details, {}) == (quote.details, other.details)
    assert quote.details is not details
    assert binding("rent", ARGS, 2.0) == quote.digest
    assert quote is book.get(quote.token)
    assert book.get("no-such-token") is None


# --------------------------------------------------------------------------- redeem


def test_a_quote_redeems_once_for_exactly_its_arguments(book: QuoteBook) -> None:
    """Redeem returns the quote, used; a second redeem is refused as used."""
    quote = book.issue("rent", ARGS, 2.0)
    assert quote is book.redeem(quote.token, "rent", dict(ARGS))
    assert quote.state == "used"
    error = refused(book, quote.token)
    assert (
        error.reason,
        error.message,
    ) == ("used", "this quote was already used: call quote_rental again")
    assert error.message == str(error)


@pytest.mark.parametrize("token", [None, ""])
def test_a_rent_without_a_token_is_told_to_quote_first(book: QuoteBook, token: str | None) -> None:
    """No token (or an empty one): ``missing``, naming the quote tool."""
    error = refused(book, token)
    assert (error.reason, error.message) == (
        "missing",
        "a quote token is required: call quote_rental first with these arguments",
    )


def test_another_kind_of_quote_is_named_for_its_kind(book: QuoteBook) -> None:
    """A job's refusal names the job quote, not quote_rental."""
    error = refused(book, None, kind="job")
    assert str(error) == "a quote token is required: call the job quote first with these arguments"


def test_a_token_of_another_kind_or_none_is_unknown(book: QuoteBook) -> None:
    """A rent's token does not start a job; a token never issued is unknown."""
    quote = book.issue("rent", ARGS, 2.0)
    error = refused(book, quote.token, kind="job")
    assert (error.reason, error.message) == (
        "unknown",
        "unknown quote token: call the job quote again (tokens do not survive a restart of "
        "the server)",
    )
    assert refused(book, "forged-token").reason == "unknown"
    # The wrong kind did not use the token up.
    assert quote is book.redeem(quote.token, "rent", ARGS)


def test_a_quote_lives_exactly_its_ttl(book: QuoteBook, clock: ManualClock) -> None:
    """Redeemable at ``issued_at + ttl``; a moment later expired, saying how late."""
    first = book.issue("rent", ARGS, 2.0)
    second = book.issue("rent", ARGS, 2.0)
    clock.advance(TTL)
    assert first is book.redeem(first.token, "rent", ARGS)
    clock.advance(5.2)
    error = refused(book, second.token)
    assert (error.reason, error.message) == (
        "expired",
        "the quote expired 5 s ago (quotes live 120 s): call quote_rental again",
    )
    # An expired token is used up: a retry is refused as used.
    assert refused(book, second.token).reason == "used"


def test_changed_arguments_are_refused_and_use_the_token_up(book: QuoteBook) -> None:
    """Other arguments than the quoted ones: refused, and the token is gone."""
    quote = book.issue("rent", ARGS, 2.0)
    error = refused(book, quote.token, server_id=8)
    assert (error.reason, error.message) == (
        "arguments_changed",
        "the arguments differ from the quoted ones: pass exactly the arguments of the "
        "quote, or call quote_rental again for the new ones",
    )
    assert refused(book, quote.token).reason == "used"


def test_a_declined_quote_cannot_be_redeemed(book: QuoteBook) -> None:
    """The person said no: the token is burnt, and says so."""
    quote = book.issue("rent", ARGS, 2.0)
    book.decline(quote.token)
    book.decline("no-such-token")  # nothing to burn: no error
    assert quote.state == "declined"
    error = refused(book, quote.token)
    assert (error.reason, error.message) == (
        "declined",
        "the person declined this quote; do not retry it without asking",
    )


def test_old_quotes_are_forgotten_an_hour_after_they_expire(
    book: QuoteBook, clock: ManualClock
) -> None:
    """Issuing forgets quotes expired more than an hour ago; younger ones stay."""
    old = book.issue("rent", ARGS, 2.0)
    clock.advance(TTL + 3600.0)
    young = book.issue("rent", ARGS, 2.0)
    assert old is book.get(old.token)  # expired exactly an hour ago: kept
    clock.advance(0.5)
    book.issue("rent", ARGS, 2.0)
    assert book.get(old.token) is None
    assert young is book.get(young.token)
    assert refused(book, old.token).reason == "unknown"
