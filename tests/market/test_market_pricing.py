"""Price words, currency conversion and the one way a server's price is read."""

from __future__ import annotations

import pytest

from clore._wire import Price, Server, UsdPrice
from clore.market import (
    USD,
    Amount,
    PriceContext,
    convert,
    format_amount,
    label,
    parse_amount,
    parse_currency,
    server_price,
)

RATES = {"bitcoin": 60_000.0, "CLORE-Blockchain": 0.01, "USD-Blockchain": 1.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", Amount(3.0, None, False)),
        ("3usd", Amount(3.0, USD, False)),
        ("3 USD", Amount(3.0, USD, False)),
        ("0.2usd/h", Amount(0.2, USD, True)),
        ("0.2usd/hour", Amount(0.2, USD, True)),
        ("0.0001btc", Amount(0.0001, "bitcoin", False)),
        ("1e-4btc/day", Amount(0.0001, "bitcoin", False)),
        ("500clore", Amount(500.0, "CLORE-Blockchain", False)),
        ("500CLORE-Blockchain/d", Amount(500.0, "CLORE-Blockchain", False)),
        (".5/h", Amount(0.5, None, True)),
    ],
)
def test_parse_amount_reads_number_currency_and_period(text: str, expected: Amount) -> None:
    """Price words carry an optional currency suffix and an optional /h or /d period."""
    assert parse_amount(text) == expected


@pytest.mark.parametrize("text", ["", "usd", "3eur", "3usd/week", "-1usd", "3 usd h", "1..2"])
def test_parse_amount_rejects_malformed_words(text: str) -> None:
    """Anything that is not number[currency][/period] is a ValueError."""
    with pytest.raises(ValueError):
        parse_amount(text)


def test_per_hour_amounts_are_compared_per_day() -> None:
    """An hourly amount is 24 times larger per day."""
    assert parse_amount("0.5usd/h").per_day == 12.0


@pytest.mark.parametrize(
    ("name", "key"),
    [("btc", "bitcoin"), ("BTC", "bitcoin"), ("clore", "CLORE-Blockchain"), ("usd", USD)],
)
def test_parse_currency_accepts_short_names(name: str, key: str) -> None:
    """Short currency names map to the API's keys."""
    assert parse_currency(name) == key


def test_parse_currency_names_the_accepted_spellings() -> None:
    """An unknown currency's error lists what is accepted."""
    with pytest.raises(ValueError, match="btc, clore or usd"):
        parse_currency("eur")


def test_convert_goes_through_usd_and_needs_rates() -> None:
    """Conversion uses USD rates; same-currency and USD-Blockchain need none."""
    assert convert(0.001, "bitcoin", USD, RATES) == pytest.approx(60.0)
    assert convert(60.0, USD, "bitcoin", RATES) == pytest.approx(0.001)
    assert convert(100.0, "CLORE-Blockchain", "bitcoin", RATES) == pytest.approx(1 / 60_000)
    assert convert(5.0, "bitcoin", "bitcoin", None) == 5.0
    assert convert(5.0, "bitcoin", USD, None) is None


def _server(on_demand: dict[str, float], **price: object) -> Server:
    return Server(id=1, price=Price(on_demand=on_demand, spot={}, **price))  # type: ignore[arg-type]


def test_server_price_prefers_a_listed_price_then_the_payment_currency() -> None:
    """A currency the server lists is read as is; others are converted from the payment one."""
    server = _server({"bitcoin": 0.001, "CLORE-Blockchain": 1.0})
    ctx = PriceContext("bitcoin", RATES)
    assert server_price(server, ctx) == 0.001
    assert server_price(server, ctx, "CLORE-Blockchain") == 1.0
    assert server_price(server, ctx, USD) == pytest.approx(60.0)
    assert server_price(server, PriceContext("CLORE-Blockchain", RATES), USD) == 0.01


def test_server_price_converts_from_another_listed_currency() -> None:
    """Without the payment currency, another listed currency is converted."""
    server = _server({"bitcoin": 0.001})
    assert server_price(server, PriceContext("CLORE-Blockchain", RATES)) == pytest.approx(6000.0)


def test_usd_without_rates_falls_back_to_the_records_own_usd_figures() -> None:
    """Without rates, price.usd or a USD-Blockchain price give the USD figure."""
    hinted = _server({"bitcoin": 0.001}, usd=UsdPrice(on_demand_btc=61.0))
    native = _server({"bitcoin": 0.001, USD: 59.0})
    bare = _server({"bitcoin": 0.001})
    ctx = PriceContext("bitcoin", None)
    assert server_price(hinted, ctx, USD) == 61.0
    assert server_price(native, ctx, USD) == 59.0
    assert server_price(bare, ctx, USD) is None


def test_labels_and_formatting() -> None:
    """Tables label currencies briefly, amounts by the output rules (the currency's
    significant digits), unknown prices as a dash."""
    assert label("bitcoin") == "BTC"
    assert format_amount(0.0003 / 24, "bitcoin") == "0.00001250"
    assert format_amount(3.40114, USD) == "3.40"
    assert format_amount(0.14171, USD) == "0.142"  # USD: 3 significant digits
    assert format_amount(None, USD) == "—"
