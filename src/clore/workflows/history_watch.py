"""The watch's market history: feed the history store from the listings the watch already
fetched, and alert on conditions over the market and its past (``clore watch --when``).

``HistoryWatch.observe`` takes each listing a loop fetched (no request of its own, except
the USD rates: one ``spot_marketplace`` call per ``rates_every`` seconds when a rates
client is given, as ``clore market record`` does), and

1. checks the ``HistoryAlert``'s conditions on it (before storing it, so a deal is never
   part of the baseline it is compared with), yielding a ``history_alert`` event for each
   condition that starts to hold: once per episode (``clore.market.history.Episodes``);
2. stores it in the ``HistoryStore`` (change-only; at most once per ``record_every``
   seconds of server time, so a 10-second watch does not write six snapshots a minute; a
   snapshot not newer than the store's last, e.g. one ``clore market record`` wrote, is
   skipped by the store).

Times are the server's (``now``: ``client.server_time()``), like a recorder's. A failure
of the database (locked past its timeout, disk full, not a history file) is an ``error``
event that does not stop the loop: the watch goes on, and so does its renting.

The episodes (condition -> holding) are ``episodes``; the ``Watcher`` keeps them in its
state file and gives them back with ``restore`` on restart, so an episode that was
reported is not reported again by a restarted watch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from clore._wire import Server
from clore.market.pricing import PriceContext, label
from clore.workflows.events import Event, make_event

if TYPE_CHECKING:
    from clore.market.history import HistoryAlert, HistoryStore, Verdict
    from clore.market.history.recorder import MarketClient, Rates

__all__ = ["RECORD_EVERY", "HistoryWatch"]

#: Least server seconds between two snapshots a loop stores (the recorder's minimum).
RECORD_EVERY = 60.0
_PRICE_METRICS = frozenset({"price", "median"})


class HistoryWatch:
    """Alerts on the market and its past, and the listing fed to the history, for a loop
    that fetches the marketplace (see the module docstring)."""

    def __init__(
        self,
        *,
        store: HistoryStore | None = None,
        alert: HistoryAlert | None = None,
        record: bool = True,
        record_every: float = RECORD_EVERY,
        rates: Mapping[str, float] | None = None,
        rates_client: MarketClient | None = None,
        rates_every: float = 600.0,
    ) -> None:
        if record and store is None:
            raise ValueError("recording needs a history store")
        self.store = store
        self.alert = alert
        self.record = record
        self.record_every = record_every
        self.fixed_rates = dict(rates) if rates else None
        self._rates: Rates | None = None
        if rates_client is not None:
            from clore.market.history.recorder import Rates

            self._rates = Rates(rates_client, rates_every)
        self._recorded_at: float | None = None
        self.recorded = 0
        self.fired: list[Event] = []

    # ---- episodes ---------------------------------------------------------------------

    @property
    def episodes(self) -> dict[str, bool]:
        """Each condition's state (its text -> holding at the last check), to be saved."""
        return dict(self.alert.episodes.state) if self.alert is not None else {}

    def restore(self, state: Mapping[str, bool]) -> None:
        """Continue the episodes of a previous run (from its state file)."""
        if self.alert is not None:
            from clore.market.history import Episodes

            known = {cond.text for cond in self.alert.conditions}
            self.alert.episodes = Episodes({k: v for k, v in state.items() if k in known})

    # ---- each listing -----------------------------------------------------------------

    def rates(self, servers: Sequence[Server], at: float) -> dict[str, float] | None:
        """The USD rates for this listing: refreshed ones when a rates client was given,
        else (or while none could be read) the fixed ones."""
        fresh = self._rates.get(servers, at) if self._rates is not None else None
        return dict(fresh) if fresh else self.fixed_rates

    def observe(self, servers: Sequence[Server], *, now: float, at: float) -> Iterator[Event]:
        """Check the conditions on ``servers`` (server time ``now``), then store them;
        ``at`` is the loop's clock (events' times, the rates' refresh)."""
        rates = self.rates(servers, at)
        if self.alert is not None:
            yield from self._check(servers, now, at, rates)
        if self.record and self._due(now):
            yield from self._store(servers, now, at, rates)

    def _due(self, now: float) -> bool:
        return self._recorded_at is None or now - self._recorded_at >= self.record_every

    def _store(
        self, servers: Sequence[Server], now: float, at: float, rates: dict[str, float] | None
    ) -> Iterator[Event]:
        from clore.market.history import HistoryError

        assert self.store is not None
        self._recorded_at = now
        try:
            result = self.store.record(servers, at=now, rates=rates)
        except (sqlite3.Error, HistoryError) as exc:
            yield _error(at, "storing the listing in the history", exc)
            return
        self.recorded += not result.skipped

    def _check(
        self, servers: Sequence[Server], now: float, at: float, rates: dict[str, float] | None
    ) -> Iterator[Event]:
        from clore.market.history import HistoryError

        assert self.alert is not None
        try:
            results = self.alert.check(servers, now=now, rates=rates)
        except (sqlite3.Error, HistoryError) as exc:
            yield _error(at, "checking the --when conditions", exc)
            return
        for verdict, fired in results:
            if fired:
                event = self._event(verdict, servers, at, rates)
                self.fired.append(event)
                yield event

    def _event(
        self,
        verdict: Verdict,
        servers: Sequence[Server],
        at: float,
        rates: dict[str, float] | None,
    ) -> Event:
        assert self.alert is not None
        cond = verdict.condition
        selection = self.alert.selection
        baseline = cond.text.split("@", 1)[1].strip() if cond.stat else None
        unit = ""
        deal: Server | None = None
        if cond.metric in _PRICE_METRICS:
            unit = f" ({label(verdict.currency)} per GPU-day)"
            if cond.metric == "price":
                deal = _cheapest(servers, self.alert, rates)
        where = f" on server {deal.id}" if deal is not None else ""
        return make_event(
            "watch",
            "history_alert",
            at,
            f"{cond.text} for {selection.describe()}: {verdict.describe()}{unit}{where}",
            server=deal,
            condition=cond.text,
            metric=cond.metric,
            op=cond.op,
            value=verdict.value,
            threshold=verdict.threshold,
            baseline=None if baseline is None else f"{cond.stat}@{baseline}",
            currency=verdict.currency,
            selection=selection.describe(),
        )


def _cheapest(
    servers: Sequence[Server], alert: HistoryAlert, rates: Mapping[str, float] | None
) -> Server | None:
    """The available listing of the selection with the lowest ask per GPU-day (the deal
    a ``price`` condition is about)."""
    from clore.market.history import listings_of

    ctx = PriceContext(alert.currency, rates)
    free = [
        item
        for item in listings_of(servers, alert.selection, ctx)
        if not item.rented and item.price is not None
    ]
    if not free:
        return None
    best = min(free, key=lambda item: (item.price or 0.0, item.server))
    return next((s for s in servers if s.id == best.server), None)


def _error(at: float, doing: str, exc: BaseException) -> Event:
    return make_event(
        "watch",
        "error",
        at,
        f"{doing}: {type(exc).__name__}: {exc}; the watch goes on",
        error=str(exc),
        type=type(exc).__name__,
        retry_in=None,
        fatal=False,
    )
