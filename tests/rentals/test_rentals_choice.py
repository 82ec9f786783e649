"""``clore.rentals.choice``: the candidates of a rental are payable, above the quality
floors and off the bad-host list, ranked by price then reliability."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from clore import Clore
from clore._wire import MarketplaceResponse, Price, Rating, Server, Specs
from clore.market import PriceContext, parse_filters
from clore.rentals.choice import (
    DEFAULT_MIN_RATING,
    DEFAULT_MIN_RATINGS,
    DEFAULT_MIN_RELIABILITY,
    Floors,
    candidate_filter,
    cheapest,
    choose,
)
from clore.rentals.verify import BadHostList, BadHosts
from clore.sandbox import snapshot_bytes

BTC = PriceContext("bitcoin")
NONE = BadHostList()


def _server(
    sid: int,
    price: float = 0.0001,
    *,
    reliability: float = 0.99,
    rating: tuple[float, int] = (4.0, 10),
    coins: tuple[str, ...] = ("bitcoin", "CLORE-Blockchain"),
    owner: int | None = None,
    rented: bool = False,
) -> Server:
    return Server(
        id=sid,
        owner=owner if owner is not None else 1000 + sid,
        price=Price(
            on_demand={"bitcoin": price, "CLORE-Blockchain": price * 1e6},
            spot={"bitcoin": price / 2},
        ),
        specs=Specs(gpu="1x NVIDIA GeForce RTX 4090", gpuram=24),
        reliability=reliability,
        rating=Rating(avg=rating[0], cnt=rating[1]),
        allowed_coins=list(coins),
        rented=rented,
    )


def _capture() -> list[Server]:
    return msgspec.json.decode(snapshot_bytes(), type=MarketplaceResponse, strict=False).servers


def test_the_default_floors_are_the_documented_ones() -> None:
    """Floors() is reliability >= 0.9 and rating >= 2.5 once rated 3+ times."""
    floors = Floors()
    assert (
        (floors.min_reliability, floors.min_rating, floors.min_ratings)
        == (
            DEFAULT_MIN_RELIABILITY,
            DEFAULT_MIN_RATING,
            DEFAULT_MIN_RATINGS,
        )
        == (0.9, 2.5, 3)
    )
    assert floors.describe() == "reliability >= 90%, rating >= 2.5 (once rated 3+ times)"
    assert Floors.off().describe() == "none"


@pytest.mark.parametrize(
    ("server", "problem"),
    [
        (_server(1, reliability=0.42), "reliability 42% < 90%"),
        (_server(2, reliability=0.899), "reliability 89.9% < 90%"),
        (_server(3, rating=(2.0, 5)), "rating 2.0 from 5 ratings < 2.5"),
        (_server(4, rating=(2.49, 3)), "rating 2.5 from 3 ratings < 2.5"),
        (_server(5, rating=(1.0, 2)), None),  # two ratings: not judged
        (_server(6, rating=(0.0, 0)), None),  # unrated
        (_server(7, reliability=0.9, rating=(2.5, 3)), None),  # at the floors
    ],
)
def test_a_server_below_a_floor_says_which(server: Server, problem: str | None) -> None:
    """Each floor names the value and the floor; thin ratings are judged on reliability."""
    assert problem == Floors().problem(server)


def test_floors_refuse_values_outside_their_scales() -> None:
    """Reliability is 0..1, a rating 0..5, a count of ratings not negative."""
    for kwargs in ({"min_reliability": 90.0}, {"min_rating": 6.0}, {"min_ratings": -1}):
        with pytest.raises(ValueError):
            Floors(**kwargs)  # type: ignore[arg-type]


def test_candidates_are_ranked_by_price_then_reliability() -> None:
    """Cheapest first; at an equal price the more reliable server first."""
    servers = [
        _server(1, 0.0002),
        _server(2, 0.0001, reliability=0.95),
        _server(3, 0.0001, reliability=0.99),
        _server(4, 0.00005, reliability=0.5),  # below the floor
    ]
    ranked = cheapest(servers, [], BTC, bad_hosts=NONE)
    assert [s.id for s in ranked] == [3, 2, 1]
    off = cheapest(servers, [], BTC, floors=Floors.off(), bad_hosts=NONE)
    assert [s.id for s in off] == [4, 3, 2, 1]


def test_a_server_not_taking_the_currency_is_never_a_candidate() -> None:
    """A CLORE-only server is no bitcoin candidate however cheap, even with no floors."""
    servers = [_server(1, 0.00001, coins=("CLORE-Blockchain",)), _server(2, 0.0001)]
    choice = choose(servers, [], BTC, floors=Floors.off(), bad_hosts=NONE)
    assert ([s.id for s in choice.candidates], [s.id for s in choice.not_payable]) == ([2], [1])
    clore_ctx = PriceContext("CLORE-Blockchain")
    assert [s.id for s in cheapest(servers, [], clore_ctx, bad_hosts=NONE)] == [1, 2]


def test_servers_on_the_bad_host_list_are_skipped(tmp_path: Path) -> None:
    """A listed server, every server of a listed owner and of an owner with two strikes."""
    bad = BadHosts(tmp_path / "bad.json")
    bad.add_server(1, reason="gpu_count fail", owner=50)
    bad.add_owner(60, reason="lies")
    bad.add_server(3, reason="pcie fail", owner=70)
    bad.add_server(4, reason="power fail", owner=70)
    servers = [
        _server(1, owner=50),
        _server(2, owner=60),
        _server(5, owner=70),  # the owner's third server: two strikes already
        _server(6, owner=80),
    ]
    choice = choose(servers, [], BTC, bad_hosts=bad.load())
    assert [s.id for s in choice.candidates] == [6]
    assert [s.id for s, _ in choice.bad_hosts] == [1, 2, 5]
    assert choice.describe_left_out() == "3 on the bad-host list"


def test_the_default_bad_host_list_is_the_local_file() -> None:
    """Without a list given, the one in the data directory is read."""
    BadHosts().add_server(1, reason="fewer GPUs than listed")
    assert [s.id for s in cheapest([_server(1), _server(2)], [], BTC)] == [2]


def test_rented_and_non_matching_servers_are_not_counted_as_matched() -> None:
    """``matched`` counts the available servers matching the filters; the rest is why."""
    servers = [
        _server(1, rented=True),
        _server(2, reliability=0.3),
        _server(3, coins=("CLORE-Blockchain",)),
        _server(4),
    ]
    choice = choose(servers, parse_filters(["gpu=4090"]), BTC, bad_hosts=NONE)
    assert (choice.matched, [s.id for s in choice.candidates]) == (3, [4])
    assert choice.describe_left_out() == (
        "1 not payable in the currency, 1 below the quality floors"
    )


def test_a_spot_ranking_uses_the_spot_minimum_and_the_floors() -> None:
    """With ``spot`` the price is the spot minimum; the floors apply the same."""
    servers = [_server(1, 0.0004), _server(2, 0.0002, reliability=0.2), _server(3, 0.0003)]
    ranked = cheapest(servers, [], BTC, spot=True, bad_hosts=NONE)
    assert [(s.id, s.price_per_day("bitcoin", spot=True)) for s in ranked] == [
        (3, 0.00015),
        (1, 0.0002),
    ]


def test_on_the_real_capture_the_cheapest_4090_is_no_longer_the_42_percent_one() -> None:
    """gpu=4090 gpus=1: the cheapest with floors is reliable and rated; without them it is
    one the floors leave out."""
    servers = _capture()
    words = parse_filters(["gpu=4090", "gpus=1"])
    best = cheapest(servers, words, BTC, bad_hosts=NONE)[0]
    assert float(best.reliability) >= 0.9
    assert best.rating.cnt < 3 or float(best.rating.avg) >= 2.5
    unfloored = cheapest(servers, words, BTC, floors=Floors.off(), bad_hosts=NONE)
    assert Floors().problem(unfloored[0]) is not None
    assert unfloored[0].price_per_day("bitcoin") < best.price_per_day("bitcoin")  # type: ignore[operator]
    forty_two = next(s for s in unfloored if float(s.reliability) < 0.5)
    assert forty_two.id not in {s.id for s in cheapest(servers, words, BTC, bad_hosts=NONE)}


def test_the_sandbox_market_ranks_like_the_capture(clore_client: Clore) -> None:
    """The sandbox's listing (the capture as seeded) gives candidates above the floors."""
    ranked = cheapest(clore_client.marketplace(), parse_filters(["gpus>=1"]), BTC)
    assert ranked and all(Floors().admits(s) for s in ranked)
    prices = [s.price_per_day("bitcoin") for s in ranked]
    assert prices == sorted(prices)  # type: ignore[type-var]


def test_the_candidate_filter_is_the_rule_of_choose(tmp_path: Path) -> None:
    """One server at a time (a watch's match): payable, above the floors, not a bad host."""
    bad = BadHosts(tmp_path / "bad.json")
    bad.add_server(4, reason="ERR! on GPU 0")
    servers = [
        _server(1),
        _server(2, reliability=0.5),
        _server(3, coins=("CLORE-Blockchain",)),
        _server(4),
    ]
    admits = candidate_filter("bitcoin", bad_hosts=bad.load())
    expected = [s.id for s in choose(servers, [], BTC, bad_hosts=bad.load()).candidates]
    assert [s.id for s in servers if admits(s)] == expected == [1]
    loose = candidate_filter("bitcoin", floors=Floors.off(), bad_hosts=NONE)
    assert [s.id for s in servers if loose(s)] == [1, 2, 4]
