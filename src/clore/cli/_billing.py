"""No silent billing: the one line a command says when it stops while an order it knows of
is still running (and billing), with the exact commands to cancel it or to wait again.

``billing_error(exc, order_id, ready=...)`` turns whatever stopped the command (Ctrl-C,
a ``--wait`` timeout, a verification not followed by a cancel, any error after the
order was created) into one ``CliError`` with the error's own exit code (130 for Ctrl-C)
and message, followed by that line: every failure stays one line on stderr.
"""

from __future__ import annotations

import click

from clore.cli._context import CliError, exit_code_for

__all__ = ["billing_error", "still_billing"]


def still_billing(order_id: int, *, ready: bool = False) -> str:
    """``order 12 is still running and billing: `clore cancel 12` stops it, `clore order
    12 --wait` waits for it again`` (``clore order 12`` shows it, once it is ready)."""
    again = (
        f"`clore order {order_id}` shows it"
        if ready
        else (f"`clore order {order_id} --wait` waits for it again")
    )
    return (
        f"order {order_id} is still running and billing: `clore cancel {order_id}` stops "
        f"it, {again}"
    )


def _ended(exc: BaseException) -> bool:
    """True for an error saying the order is no longer running (nothing bills)."""
    from clore import OrderExpiredError, OrderNotFoundError

    return isinstance(exc, OrderExpiredError | OrderNotFoundError)


def billing_error(exc: BaseException, order_id: int, *, ready: bool = False) -> BaseException:
    """The error to raise in place of ``exc`` now that order ``order_id`` exists: its
    exit code and message with the still-billing line; ``exc`` itself when the order
    has ended (or ``exc`` is a plain exit)."""
    if _ended(exc) or isinstance(exc, click.exceptions.Exit | SystemExit):
        return exc
    code, message = exit_code_for(exc)
    if isinstance(exc, KeyboardInterrupt) or code == 130:
        message = "interrupted"
    text = (
        f"{message}; {still_billing(order_id, ready=ready)}"
        if message
        else (still_billing(order_id, ready=ready))
    )
    error = CliError(text, code)
    error.__cause__ = exc
    return error
