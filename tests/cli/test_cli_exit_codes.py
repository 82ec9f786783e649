"""Every error maps to its documented exit code and a one-line message."""

from __future__ import annotations

import click
import pytest

from clore import _errors as errors
from clore.cli._context import CliError, exit_code_for
from clore.market import FilterError, SortError


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.ServerAlreadyRentedError(6, "server-already-rented"), 1),
        (errors.NotEnoughBalanceError(6, "not_enough_balance"), 1),
        (errors.DatabaseError(1), 1),
        (errors.APIConnectionError("refused"), 1),
        (errors.UnexpectedResponseError("not json", status_code=502), 1),
        (errors.WaitTimeoutError("not ready"), 1),
        (errors.OrderExpiredError("ended", order_id=3), 1),
        (errors.ParameterError("ports", "bad"), 2),
        (errors.InvalidInputError(2), 2),
        (errors.ConfigError("broken toml"), 2),
        (FilterError("gpu>1", "compares with = or != only"), 2),
        (SortError("colour"), 2),
        (click.UsageError("no such option"), 2),
        (errors.AuthenticationError(3), 3),
        (CliError("no API key configured", 3), 3),
        (errors.OrderNotFoundError("order 9 is not among your orders", order_id=9), 4),
        (errors.ServerNotFoundError("no server 9", server_id=9), 4),
        (errors.RateLimitError(5), 5),
        (KeyboardInterrupt(), 130),
        (RuntimeError("bug"), 1),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_exceptions_map_to_documented_exit_codes(exc: BaseException, code: int) -> None:
    """The exit code table of docs/cli.md, and a single-line message for each."""
    actual, message = exit_code_for(exc)
    assert actual == code
    assert message and "\n" not in message


def test_interrupt_inside_click_maps_to_130() -> None:
    """click turns Ctrl-C into Abort from KeyboardInterrupt; that is still 130."""
    abort = click.Abort()
    abort.__cause__ = KeyboardInterrupt()
    assert exit_code_for(abort) == (130, "interrupted")


def test_unexpected_errors_say_how_to_see_details() -> None:
    """A bug is one line naming the exception, pointing at -v."""
    assert exit_code_for(RuntimeError("boom"))[1] == (
        "unexpected error: RuntimeError: boom (run with -v for details)"
    )


def test_known_refusals_say_what_to_do_next() -> None:
    """Code-6 refusals and network failures carry a hint after the API's own words."""
    too_low = exit_code_for(errors.TooLowPriceError(6, "too_low_price"))
    assert too_low[0] == 1 and too_low[1].endswith(
        "too_low_price (below the server's spot minimum: see `clore server ID`)"
    )
    assert exit_code_for(errors.NotEnoughBalanceError(6, "not_enough_balance"))[1].endswith(
        "(see `clore wallets`)"
    )
    assert exit_code_for(errors.APIConnectionError("refused"))[1].endswith(
        "(check the network, or --base-url)"
    )
