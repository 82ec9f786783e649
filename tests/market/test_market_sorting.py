"""--sort: multi-key, per-key direction, stable, unknown values last."""

from __future__ import annotations

import pytest

from clore._wire import Price, Rating, Server
from clore.market import PriceContext, SortError, parse_sort, sort_servers

CTX = PriceContext("bitcoin", {"bitcoin": 60_000.0})


def _server(sid: int, price: float | None, reliability: float, cuda: str | None = "12.2") -> Server:
    on_demand = {} if price is None else {"bitcoin": price}
    return Server(
        id=sid,
        price=Price(on_demand=on_demand),
        reliability=reliability,
        rating=Rating(avg=sid % 5),
        cuda_version=cuda,
    )


SERVERS = [
    _server(1, 0.002, 0.5),
    _server(2, 0.001, 0.9),
    _server(3, None, 0.99),
    _server(4, 0.001, 0.95),
    _server(5, 0.002, 0.5, cuda=None),
]


def _ids(spec: str) -> list[int]:
    return [s.id for s in sort_servers(SERVERS, parse_sort(spec), CTX)]


def test_single_key_ascending_puts_unknown_last() -> None:
    """Sorting by price puts the server without a price last."""
    assert _ids("price") == [2, 4, 1, 5, 3]


def test_descending_key_still_puts_unknown_last() -> None:
    """A descending key reverses the known values only."""
    assert _ids("-price") == [1, 5, 2, 4, 3]


def test_second_key_breaks_ties_in_its_own_direction() -> None:
    """price,-reliability: cheapest first, most reliable first among equal prices."""
    assert _ids("price,-reliability") == [4, 2, 1, 5, 3]


def test_equal_keys_keep_their_input_order() -> None:
    """The sort is stable."""
    assert _ids("reliability") == [1, 5, 2, 4, 3]


def test_versions_sort_numerically() -> None:
    """CUDA versions compare as numbers and missing versions go last."""
    servers = [_server(1, 1, 1, "12.10"), _server(2, 1, 1, "12.2"), _server(3, 1, 1, None)]
    ordered = sort_servers(servers, parse_sort("cuda"), CTX)
    assert [s.id for s in ordered] == [2, 1, 3]


def test_aliases_and_spaces_are_accepted() -> None:
    """Field aliases work as sort keys and blanks are ignored."""
    assert [k.field.name for k in parse_sort(" country , -vram,")] == ["cc", "gpuram"]


def test_unknown_sort_key_lists_the_fields() -> None:
    """An unknown key raises SortError naming it and the known fields."""
    with pytest.raises(SortError, match=r"unknown sort key '-colour'.*Known fields: id, gpu"):
        parse_sort("price,-colour")
