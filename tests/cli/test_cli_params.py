"""The shared rules for values on the command line (``clore.cli._params``) and the one-line
error rule, in process; ``test_cli_malformed.py`` runs them as real processes."""

from __future__ import annotations

import time

import click
import pytest
from click.testing import CliRunner

from clore.cli import cli
from clore.cli._context import CliError, one_line
from clore.cli._params import (
    MAX_DURATION,
    MAX_INT,
    Duration,
    Id,
    Integer,
    Number,
    parse_duration,
    parse_id,
    parse_number,
    parse_price,
    parse_until,
)
from clore.sandbox import FAULTS

NOW = 1_714_564_800.0  # 2024-05-01 12:00 UTC


@pytest.mark.parametrize("text", ["١٢", "１２", "²", "1_2", "+12", "-1", "0x1f", "1e3", "", "1 2"])
def test_ids_are_ascii_digits_only(text: str) -> None:
    """An id spelt with other scripts' digits, a sign, a separator or a base is refused."""
    with pytest.raises(click.BadParameter, match="is not an id"):
        Id().convert(text, None, None)


def test_ids_stop_at_64_bits() -> None:
    """The largest id is 2**63 - 1; one more is refused without converting 5,000 digits."""
    assert Id().convert(str(MAX_INT), None, None) == MAX_INT
    for text in [str(MAX_INT + 1), "9" * 5000]:
        with pytest.raises(click.BadParameter, match="too large for an id"):
            Id().convert(text, None, None)


def test_an_id_inside_a_word_names_its_place() -> None:
    """``parse_id`` (``ORDER:path``) exits 2 naming what it read."""
    assert parse_id("1234") == 1234
    with pytest.raises(CliError) as caught:
        parse_id("١٢")
    assert (
        caught.value.exit_code,
        caught.value.message,
    ) == (2, "ORDER: '١٢' is not an id (digits 0-9 only)")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "Infinity", "1e999", "1_0", "١", "0x10"])
def test_numbers_are_finite_and_ascii(text: str) -> None:
    """``Number`` refuses what ``float`` takes but nobody can wait for or pay."""
    with pytest.raises(click.BadParameter):
        Number(min=0).convert(text, None, None)


def test_numbers_keep_their_range() -> None:
    """Within the rules, ``Number`` and ``Integer`` are click's ranges."""
    assert Number(min=0).convert("0.5", None, None) == 0.5
    assert Number(min=0).convert("1e3", None, None) == 1000.0
    assert Integer().convert("-3", None, None) == -3
    with pytest.raises(click.BadParameter, match="range"):
        Number(min=0, min_open=True).convert("0", None, None)
    with pytest.raises(click.BadParameter, match="range"):
        Integer(0, 65535).convert("70000", None, None)
    with pytest.raises(click.BadParameter, match="whole number >= 0"):
        Integer(min=0).convert("-1", None, None)


def test_environment_numbers_follow_the_same_rule() -> None:
    """``parse_number`` names the variable and refuses non-finite or small values."""
    assert parse_number("5", "CLORE_MARKET_TTL") == 5.0
    for text in ["nan", "-1", "١"]:
        with pytest.raises(CliError, match="CLORE_MARKET_TTL"):
            parse_number(text, "CLORE_MARKET_TTL", minimum=0.0)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90.0), ("1h30m", 5400.0), ("2d", 172800.0), ("100w", 6.048e7)]
)
def test_durations_in_range_are_seconds(text: str, seconds: float) -> None:
    """Durations keep their units."""
    assert seconds == parse_duration(text, "--for")
    assert seconds == Duration().convert(text, None, None)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("99999999999999999999999d", "too long"),
        ("9" * 400 + "s", "too long"),
        ("١٢m", "digits 0-9 only"),
        ("１h", "digits 0-9 only"),
        ("nan", "bad duration"),
        ("0", "greater than zero"),
    ],
)
def test_durations_are_ascii_finite_and_bounded(text: str, why: str) -> None:
    """A duration past 100 years, in other digits, or zero is refused with the option."""
    with pytest.raises(CliError, match=why) as caught:
        parse_duration(text, "--max-time")
    assert caught.value.message.startswith("--max-time: ")
    assert caught.value.exit_code == 2


def test_zero_durations_where_allowed() -> None:
    """``zero`` admits 0 (``sandbox advance 0``); 100 years is the longest duration."""
    assert parse_duration("0", "DURATION", zero=True) == 0.0
    assert parse_duration(f"{MAX_DURATION:.0f}", "DURATION") == MAX_DURATION


@pytest.mark.parametrize(
    "text", ["inf", "1e999", "9" * 30, "١٢:٠٠", "１２:００", "", "25:99", "0001-01-01T00:00"]
)
def test_until_is_a_time_a_clock_can_reach(text: str) -> None:
    """``--until`` refuses non-finite and far unix times, other digits, impossible times."""
    with pytest.raises(CliError, match=r"^--until: ") as caught:
        parse_until(text, NOW)
    assert caught.value.exit_code == 2


def test_until_accepts_the_documented_forms() -> None:
    """HH:MM (the next one), an ISO date-time and a unix time."""
    assert parse_until(str(NOW + 3600), NOW) == NOW + 3600
    assert parse_until("2024-05-01T13:00Z", NOW) == 1_714_568_400.0
    ahead = parse_until("12:30", time.time()) - time.time()
    assert 0 < ahead <= 86400


@pytest.mark.parametrize("text", ["nan", "inf", "1e999", "9" * 400, "0", "١", "1xyz", ""])
def test_prices_are_finite_and_positive(text: str) -> None:
    """``parse_price`` checks a price's form before anything is sent."""
    with pytest.raises(CliError, match=r"^PRICE: "):
        parse_price(text, "PRICE")


def test_prices_keep_currency_and_period() -> None:
    """The currency and the period stay the caller's to settle."""
    amount = parse_price("0.2usd/h", "--max-price")
    assert (
        amount.currency,
        amount.per_hour,
        pytest.approx(amount.per_day),
    ) == ("USD-Blockchain", True, 4.8)


def test_errors_are_one_line_with_control_characters_escaped() -> None:
    """Newlines and tabs (click's lists, or typed) become spaces; other controls are escaped."""
    assert one_line("Choose from:\n\ta,\n\tb") == "Choose from: a, b"
    assert one_line("bad \x1b[31m key") == "bad \\x1b[31m key"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["spot"], "missing command: one of bid, keep, price (see `clore spot --help`)"),
        (["host"], "missing command: one of config, list, set (see `clore host --help`)"),
        ([], "missing command (see `clore --help`)"),
        (
            ["sandbox", "fault", "create_order"],
            f"Missing argument 'FAULT'. Choose from: {', '.join(FAULTS)} "
            "(see `clore sandbox fault --help`)",
        ),
    ],
)
def test_usage_errors_are_one_line(args: list[str], line: str) -> None:
    """A group without its command, or a missing choice, is one line naming what to give."""
    result = CliRunner().invoke(cli, args)
    assert (2, f"clore: error: {line}\n", "") == (result.exit_code, result.stderr, result.stdout)
