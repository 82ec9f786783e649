"""``Limits.parse``: spend and time limits as people and task files write them."""

from __future__ import annotations

import pytest

from clore.workflows import Limits
from clore.workflows.plan import LimitError

RATES = {"bitcoin": 50_000.0, "CLORE-Blockchain": 0.05}


@pytest.mark.parametrize(
    ("spend", "time", "expected"),
    [
        ("0.001", "8h", Limits(max_spend=0.001, max_time=28_800.0)),
        ("0.001btc", 90, Limits(max_spend=0.001, max_time=90.0)),
        ("5usd", "1h30m", Limits(max_spend=0.0001, max_time=5_400.0)),
        ("1000clore", None, Limits(max_spend=0.001)),
        (0.002, None, Limits(max_spend=0.002)),
        (None, "1d", Limits(max_time=86_400.0)),
        (None, None, Limits()),
    ],
)
def test_limits_are_read_and_converted_to_the_order_currency(
    spend: str | float | None, time: str | float | None, expected: Limits
) -> None:
    """A spend in another currency is converted with USD rates; a bare one is the order's."""
    parsed = Limits.parse(spend, time, "bitcoin", rates=RATES)
    assert (parsed.max_spend, parsed.max_time) == (
        pytest.approx(expected.max_spend) if expected.max_spend else None,
        expected.max_time,
    )


@pytest.mark.parametrize(
    ("spend", "time", "name", "reason"),
    [
        ("5usd", None, "max_spend", "cannot convert USD to BTC without USD rates"),
        ("0.1usd/h", None, "max_spend", "a total amount, not a rate"),
        ("lots", None, "max_spend", "bad price 'lots'"),
        ("0", None, "max_spend", "greater than zero"),
        (None, "soon", "max_time", "bad duration 'soon'"),
        (None, 0, "max_time", "greater than zero"),
        (None, float("inf"), "max_time", "finite"),
    ],
)
def test_a_limit_that_cannot_be_read_is_named(
    spend: str | None, time: str | float | None, name: str, reason: str
) -> None:
    """LimitError names the limit (max_spend, max_time) and says why."""
    with pytest.raises(LimitError) as caught:
        Limits.parse(spend, time, "bitcoin")
    assert (caught.value.name, reason in caught.value.reason) == (name, True)


def test_spend_currency_says_when_rates_may_be_needed() -> None:
    """The currency a spend names, None for a bare number or none at all."""
    assert [Limits.spend_currency(v) for v in ("5usd", "0.1", 0.1, None)] == [
        "USD-Blockchain",
        None,
        None,
        None,
    ]
