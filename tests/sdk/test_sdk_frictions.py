"""The SDK's small frictions, gone: one alias table for create_order and the price lookups,
Literal names that match it, parameter docs on every public method, the filter language
as ``Clore.search`` (sorted as ``clore market`` sorts), and a second cancel as documented."""

from __future__ import annotations

import inspect
import json
import re
from typing import get_args

import pytest
from click.testing import CliRunner

from _stub.wire import Wire, end, free_server, rent
from clore import (
    AsyncClore,
    Clore,
    CurrencyName,
    OrderTypeName,
    ParameterError,
    Server,
    preview_create_order,
)
from clore._clock import ManualClock
from clore._facts import CURRENCIES, CURRENCY_ALIASES, ORDER_TYPE_ALIASES
from clore.market import FilterError, SortError
from clore.sandbox import Sandbox


def _priced(client: Clore) -> Server:
    """A listed server with on-demand prices in more than one currency."""
    return next(s for s in client.marketplace() if len(s.price.on_demand) > 1)


def test_every_alias_create_order_takes_finds_the_same_price(client: Clore) -> None:
    """Each currency spelling create_order accepts (any case) names the price
    Server.price_per_day reads: btc, clore, usd and the full keys alike."""
    server = _priced(client)
    spellings = [*CURRENCY_ALIASES, *(a.upper() for a in CURRENCY_ALIASES), " Btc "]
    for name in spellings:
        sent = preview_create_order(server.id, "img", currency=name).currency
        assert server.price_per_day(name) == server.price_per_day(sent), name
    assert server.price_per_day("btc") is not None
    assert server.price_per_day("btc") == float(server.price.on_demand["bitcoin"])
    assert server.price_per_day("eur") is None
    with pytest.raises(ParameterError):
        preview_create_order(server.id, "img", currency="eur")


def test_the_literal_names_are_the_alias_tables() -> None:
    """CurrencyName and OrderTypeName list exactly the spellings the tables accept."""
    assert {name.lower() for name in get_args(CurrencyName)} == set(CURRENCY_ALIASES)
    assert set(CURRENCIES) <= set(get_args(CurrencyName))
    assert set(get_args(OrderTypeName)) == set(ORDER_TYPE_ALIASES)


def _public_methods(cls: type) -> list[str]:
    return [
        name
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_") and name not in ("close", "aclose")
    ]


@pytest.mark.parametrize("name", _public_methods(Clore))
def test_every_parameter_of_a_public_method_is_documented(name: str) -> None:
    """Each public Clore method documents each of its parameters in an Args section, and
    AsyncClore's method has the same docstring."""
    method = getattr(Clore, name)
    params = [p for p in inspect.signature(method).parameters if p != "self"]
    doc = inspect.getdoc(method) or ""
    if params:
        assert "\nArgs:\n" in doc, name
        args = doc.split("\nArgs:\n", 1)[1].split("\n\n", 1)[0]
        documented = re.findall(r"^    (\w+):", args, re.MULTILINE)
        assert documented == params, name
    assert inspect.getdoc(getattr(AsyncClore, name)) == doc


def _market_ids(sandbox: Sandbox, clock: ManualClock, client: Clore, *args: str) -> list[int]:
    """The server ids ``clore market ARGS --limit 0 --json`` lists, in its order."""
    from clore.cli import cli
    from clore.cli._context import AppContext

    app = AppContext(client_instance=client, clock_instance=clock, sandbox_instance=sandbox)
    result = CliRunner().invoke(cli, ["market", *args, "--limit", "0", "--json"], obj=app)
    assert result.exit_code == 0, result.output
    return [s["id"] for s in json.loads(result.stdout)["servers"]]


@pytest.mark.parametrize(
    ("query", "options", "flags"),
    [
        ("gpu=4090 'price<4usd'", {}, []),
        ("gpus>=2 cc=US,DE", {"sort": "-reliability,price"}, ["--sort", "-reliability,price"]),
        ("gpu~3090", {"currency": "clore"}, ["--currency", "clore"]),
        ("", {"include_rented": True}, ["--all"]),
    ],
)
def test_search_returns_what_clore_market_lists_in_its_order(
    sandbox: Sandbox,
    clock: ManualClock,
    client: Clore,
    query: str,
    options: dict[str, object],
    flags: list[str],
) -> None:
    """Clore.search(query) is the same servers in the same order as `clore market`."""
    import shlex

    found = client.search(query, **options)  # type: ignore[arg-type]
    clock.advance(1.0)
    listed = _market_ids(sandbox, clock, client, *shlex.split(query), *flags)
    assert [s.id for s in found] == listed
    assert found, query


def test_search_limits_and_takes_a_word_list(client: Clore) -> None:
    """limit cuts the sorted list; a list of words is the same query as the string."""
    words = client.search(["gpu=4090", "price<4usd"])
    assert [s.id for s in client.search("gpu=4090 'price<4usd'", limit=2)] == [
        s.id for s in words[:2]
    ]
    prices = [s.price_per_day("bitcoin") or 0.0 for s in words]
    assert prices == sorted(prices)


@pytest.mark.parametrize(
    ("query", "options", "error"),
    [
        ("gpus>=two", {}, FilterError),
        ("nosuchfield=1", {}, FilterError),
        ("gpu=4090", {"sort": "nosuchkey"}, SortError),
        ("gpu=4090", {"currency": "eur"}, ParameterError),
    ],
)
def test_a_bad_search_sends_nothing(
    client: Clore, wire: Wire, query: str, options: dict[str, str], error: type[Exception]
) -> None:
    """A bad word, sort key or currency raises (a ValueError) before any request."""
    with pytest.raises(error):
        client.search(query, **options)  # type: ignore[arg-type]
    assert issubclass(error, ValueError)
    assert wire.sent() == []


def test_a_second_cancel_of_an_ended_order_succeeds_and_changes_nothing(
    sandbox: Sandbox, client: Clore, wire: Wire
) -> None:
    """As cancel_order's docstring says: cancelling an order that has already ended
    returns None (the API answers code 0) and the order stays as it ended."""
    order_id = rent(sandbox)
    end(sandbox, order_id)
    ended = client.get_order(order_id)
    assert client.cancel_order(order_id) is None
    assert [s.code for s in wire.sent("cancel_order")] == [0]
    assert client.get_order(order_id) == ended
    assert "already ended" in (Clore.cancel_order.__doc__ or "")


def test_cancelling_an_order_that_is_not_yours_is_invalid_input(
    sandbox: Sandbox, client: Clore
) -> None:
    """An id among nobody's orders is refused with InvalidInputError, as documented."""
    from clore import InvalidInputError

    server = free_server(sandbox)
    assert server
    with pytest.raises(InvalidInputError):
        client.cancel_order(987654321)
