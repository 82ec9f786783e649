"""What the commands over the market's history share (``market record|stats|history``,
``sandbox history``, ``watch --when``): which market's file, opening it, and the
library's refusals as one line and a documented exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from clore.cli._context import EXIT_API, EXIT_NOT_FOUND, EXIT_USAGE, AppContext, CliError

if TYPE_CHECKING:
    from clore.market.history import HistoryStore

__all__ = ["endpoint", "history_errors", "open_history"]


@contextlib.contextmanager
def history_errors(option: str = "") -> Iterator[None]:
    """``NoHistoryError`` exit 4, a missing extra exit 1, any other ``HistoryError`` exit 2
    (its message prefixed with ``option`` when given)."""
    from clore.market.history import HistoryError, MissingExtraError, NoHistoryError

    prefix = f"{option}: " if option else ""
    try:
        yield
    except NoHistoryError as exc:
        raise CliError(f"{exc} (record with `clore market record`)", EXIT_NOT_FOUND) from None
    except MissingExtraError as exc:
        raise CliError(str(exc), EXIT_API) from None
    except HistoryError as exc:
        raise CliError(f"{prefix}{exc}", EXIT_USAGE) from None


def endpoint(app: AppContext) -> str | None:
    """Which market a command is about: the sandbox, or the API's base URL."""
    from clore.market.history import SANDBOX

    if app.sandbox or app.sandbox_instance is not None:
        return SANDBOX
    from clore.config import resolve

    return resolve(app.profile, base_url=app.base_url).base_url


def open_history(app: AppContext, db: str | None, *, recording: bool = False) -> HistoryStore:
    """The history of ``app``'s market (``db`` overrides the file); see ``open_store``."""
    from clore.market.history import open_store

    with history_errors():
        return open_store(db, endpoint=endpoint(app), recording=recording)
