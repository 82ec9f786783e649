"""Acting on a verification inside Clore's free window: cancel a machine that fails while
its creation fee is still free, remember its host, and tell the caller to move on.

Clore charges an order's creation fee only once it has run ``FREE_WINDOW`` (600 s, from
its ``ct``, on the server's clock). ``decide`` is the rule, pure:

- the report passed (ok or warn only): ``kept``;
- the order was not created in this run (``created_by_us=False``) and its id was not
  named for cancelling (``cancel_id``): ``not_ours``, never cancelled;
- it failed with more than ``CANCEL_MARGIN`` seconds of the window left (server seconds,
  times the server's clock rate for a sped-up sandbox): ``cancel`` — with the findings
  as the cancel's ``issue`` (``report.issue_text``) and, when the probes ran, the host
  put on the bad-host list; a machine that could not be logged in to is cancelled but not
  listed (the cause may be on the renter's side), unless ``cancel_unreachable=False``;
- it failed later than that: ``ask``. The CLI asks; with ``--yes`` it follows
  ``cancel_when_asked``: cancel only when a hard check failed (the GPUs are not what
  was paid for: ``gpu_count``, ``gpu_model``, ``gpu_memory``, ``gpu_health``), since the
  fee is paid by then and a softer shortfall may still be worth keeping.

``settle`` applies the rule to an order and its report (``asettle`` with an async
client); ``cancel_failed`` cancels after the caller's own decision; ``verify_and_settle``
(``averify_and_settle``) verifies first. A cancel the API refuses gives ``cancel_failed``
with the error: the order may still be running, and billing.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import Final, Literal, Protocol

from clore._errors import CloreError
from clore._wire import Order
from clore.rentals.verify.badhosts import BadHost, BadHosts
from clore.rentals.verify.listing import Listing
from clore.rentals.verify.report import Report, issue_text
from clore.rentals.verify.runner import ListingSource, VerifyOptions, averify, verify
from clore.rentals.verify.ssh import Credentials, Target

__all__ = [
    "CANCEL_MARGIN",
    "FREE_WINDOW",
    "AsyncSettleClient",
    "Decision",
    "Outcome",
    "SettleClient",
    "Settlement",
    "acancel_failed",
    "asettle",
    "averify_and_settle",
    "cancel_failed",
    "cancel_when_asked",
    "decide",
    "settle",
    "verify_and_settle",
]

#: Seconds an order runs before Clore charges its creation fee.
FREE_WINDOW: Final = 600.0
#: Cancel automatically only with at least this much of the window left (client seconds).
CANCEL_MARGIN: Final = 30.0

Outcome = Literal["kept", "cancelled", "ask", "not_ours", "cancel_failed"]


class SettleClient(Protocol):
    """What settling calls (``clore.Clore`` has it)."""

    def cancel_order(self, order_id: int, issue: str | None = None) -> None: ...

    def server_time(self) -> float: ...


class AsyncSettleClient(Protocol):
    """What settling calls on an async client (``clore.AsyncClore`` has it)."""

    def cancel_order(self, order_id: int, issue: str | None = None) -> Awaitable[None]: ...

    def server_time(self) -> float: ...


@dataclass(frozen=True)
class Decision:
    """What to do (``kept``, ``cancel``, ``ask``, ``not_ours``), why (one line), how long
    the order had run (server seconds) and whether that was inside the free window."""

    action: Literal["kept", "cancel", "ask", "not_ours"]
    reason: str
    elapsed: float
    in_window: bool


@dataclass(frozen=True)
class Settlement:
    """What happened: the ``outcome``, its one-line ``reason``, the report, the order, the
    ``issue`` sent (or that would be sent), the bad-host entry made, and the cancel's error."""

    outcome: Outcome
    reason: str
    report: Report
    order_id: int
    elapsed: float
    in_window: bool
    issue: str | None = None
    bad_host: BadHost | None = None
    error: str | None = None

    @property
    def move_on(self) -> bool:
        """True when the caller should try the next candidate (the order is cancelled)."""
        return self.outcome == "cancelled"


def _scale(client: object) -> float:
    scale = getattr(client, "time_scale", 1.0)
    return float(scale) if isinstance(scale, int | float) and scale > 1.0 else 1.0


def decide(
    report: Report,
    *,
    order_id: int,
    order_ct: float,
    now: float,
    created_by_us: bool,
    cancel_id: int | None = None,
    margin: float = CANCEL_MARGIN,
    cancel_unreachable: bool = True,
) -> Decision:
    """The rule (module docstring) for ``report`` of order ``order_id`` created at
    ``order_ct``, at server time ``now``; ``margin`` in server seconds."""
    elapsed = max(0.0, now - order_ct)
    in_window = elapsed + margin < FREE_WINDOW
    left = FREE_WINDOW - elapsed
    if report.passed:
        return Decision(
            "kept", f"verification {report.verdict}: keeping the order", elapsed, in_window
        )
    if not created_by_us and cancel_id != order_id:
        return Decision(
            "not_ours",
            f"verification failed, but order {order_id} was not created here: not cancelling it",
            elapsed,
            in_window,
        )
    if not report.reachable and not cancel_unreachable:
        return Decision("ask", "could not log in; not cancelling on that alone", elapsed, in_window)
    if in_window:
        return Decision(
            "cancel",
            f"verification failed {elapsed:.0f} s after creation ({left:.0f} s of the free "
            "window left): cancelling at no creation fee",
            elapsed,
            True,
        )
    return Decision(
        "ask",
        f"verification failed {elapsed:.0f} s after creation, past the free window's "
        f"{FREE_WINDOW - margin:.0f} s: the creation fee is due if kept or cancelled",
        elapsed,
        False,
    )


def cancel_when_asked(report: Report) -> bool:
    """The ``--yes`` rule outside the free window: cancel only if a hard check failed."""
    return bool(report.hard_failures())


def _bad_reason(report: Report) -> str:
    failed = report.failed()
    return "; ".join(f"{c.name}: {c.reason}" for c in failed) or "verification failed"


def _remember(report: Report, order: Order, bad_hosts: BadHosts | None) -> BadHost | None:
    if bad_hosts is None or not report.reachable:
        return None
    listing = Listing.of(order)
    server_id = report.server_id if report.server_id is not None else listing.server_id
    if server_id is None:
        return None
    return bad_hosts.add_server(
        server_id,
        reason=_bad_reason(report),
        owner=report.owner if report.owner is not None else listing.owner,
        order_id=order.id,
        checks=[c.name for c in report.failed()],
    )


def _now(client: SettleClient | AsyncSettleClient, now: float | None) -> float:
    return client.server_time() if now is None else now


def _settlement(decision: Decision, report: Report, order: Order) -> Settlement:
    outcome: Outcome = "cancelled" if decision.action == "cancel" else decision.action
    return Settlement(
        outcome=outcome,
        reason=decision.reason,
        report=report,
        order_id=order.id,
        elapsed=decision.elapsed,
        in_window=decision.in_window,
        issue=issue_text(report) if not report.passed else None,
    )


def _cancelled(planned: Settlement, order: Order, bad_hosts: BadHosts | None) -> Settlement:
    entry = _remember(planned.report, order, bad_hosts)
    return replace(planned, outcome="cancelled", bad_host=entry)


def _refused(planned: Settlement, exc: CloreError) -> Settlement:
    return replace(
        planned,
        outcome="cancel_failed",
        reason=f"cancelling order {planned.order_id} failed: it may still be running and billing",
        error=" ".join(str(exc).split())[:300],
    )


def settle(
    client: SettleClient,
    order: Order,
    report: Report,
    *,
    created_by_us: bool,
    cancel_id: int | None = None,
    now: float | None = None,
    bad_hosts: BadHosts | None = None,
    cancel_unreachable: bool = True,
) -> Settlement:
    """Apply ``decide`` to ``order``: cancel (with the issue text) and remember the host
    when it says so. ``now`` is server time (default ``client.server_time()``);
    ``bad_hosts`` None leaves the list alone."""
    decision = decide(
        report,
        order_id=order.id,
        order_ct=float(order.ct),
        now=_now(client, now),
        created_by_us=created_by_us,
        cancel_id=cancel_id,
        margin=CANCEL_MARGIN * _scale(client),
        cancel_unreachable=cancel_unreachable,
    )
    planned = _settlement(decision, report, order)
    if decision.action != "cancel":
        return planned
    try:
        client.cancel_order(order.id, issue=planned.issue)
    except CloreError as exc:
        return _refused(planned, exc)
    return _cancelled(planned, order, bad_hosts)


async def asettle(
    client: AsyncSettleClient,
    order: Order,
    report: Report,
    *,
    created_by_us: bool,
    cancel_id: int | None = None,
    now: float | None = None,
    bad_hosts: BadHosts | None = None,
    cancel_unreachable: bool = True,
) -> Settlement:
    """``settle`` with an async client."""
    decision = decide(
        report,
        order_id=order.id,
        order_ct=float(order.ct),
        now=_now(client, now),
        created_by_us=created_by_us,
        cancel_id=cancel_id,
        margin=CANCEL_MARGIN * _scale(client),
        cancel_unreachable=cancel_unreachable,
    )
    planned = _settlement(decision, report, order)
    if decision.action != "cancel":
        return planned
    try:
        await client.cancel_order(order.id, issue=planned.issue)
    except CloreError as exc:
        return _refused(planned, exc)
    return _cancelled(planned, order, bad_hosts)


def cancel_failed(
    client: SettleClient,
    settlement: Settlement,
    order: Order,
    *,
    bad_hosts: BadHosts | None = None,
) -> Settlement:
    """Cancel after an ``ask`` the user (or ``cancel_when_asked``) answered yes: the same
    issue text, the host remembered. Refuses an order other than the settlement's."""
    if order.id != settlement.order_id:
        raise ValueError(f"cancel_failed: settlement is for order {settlement.order_id}")
    planned = replace(
        settlement,
        issue=settlement.issue or issue_text(settlement.report),
        reason="cancelled as asked",
    )
    try:
        client.cancel_order(order.id, issue=planned.issue)
    except CloreError as exc:
        return _refused(planned, exc)
    return _cancelled(planned, order, bad_hosts)


async def acancel_failed(
    client: AsyncSettleClient,
    settlement: Settlement,
    order: Order,
    *,
    bad_hosts: BadHosts | None = None,
) -> Settlement:
    """``cancel_failed`` with an async client."""
    if order.id != settlement.order_id:
        raise ValueError(f"cancel_failed: settlement is for order {settlement.order_id}")
    planned = replace(
        settlement,
        issue=settlement.issue or issue_text(settlement.report),
        reason="cancelled as asked",
    )
    try:
        await client.cancel_order(order.id, issue=planned.issue)
    except CloreError as exc:
        return _refused(planned, exc)
    return _cancelled(planned, order, bad_hosts)


async def averify_and_settle(
    client: AsyncSettleClient,
    order: Order,
    credentials: Credentials,
    *,
    created_by_us: bool,
    listing: ListingSource | None = None,
    target: Target | None = None,
    cancel_id: int | None = None,
    now: float | None = None,
    bad_hosts: BadHosts | None = None,
    options: VerifyOptions | None = None,
    cancel_unreachable: bool = True,
) -> Settlement:
    """Verify ``order`` (at ``target``, default its own SSH endpoint; against ``listing``,
    default its own) and settle it. ``now`` (server time) is read after verifying."""
    report = await averify(
        target if target is not None else order,
        credentials,
        listing=listing if listing is not None or target is None else order,
        options=options,
    )
    return await asettle(
        client,
        order,
        report,
        created_by_us=created_by_us,
        cancel_id=cancel_id,
        now=now,
        bad_hosts=bad_hosts,
        cancel_unreachable=cancel_unreachable,
    )


def verify_and_settle(
    client: SettleClient,
    order: Order,
    credentials: Credentials,
    *,
    created_by_us: bool,
    listing: ListingSource | None = None,
    target: Target | None = None,
    cancel_id: int | None = None,
    now: float | None = None,
    bad_hosts: BadHosts | None = None,
    options: VerifyOptions | None = None,
    cancel_unreachable: bool = True,
) -> Settlement:
    """Verify ``order`` and settle it (see ``averify_and_settle``), for a sync client."""
    report = verify(
        target if target is not None else order,
        credentials,
        listing=listing if listing is not None or target is None else order,
        options=options,
    )
    return settle(
        client,
        order,
        report,
        created_by_us=created_by_us,
        cancel_id=cancel_id,
        now=now,
        bad_hosts=bad_hosts,
        cancel_unreachable=cancel_unreachable,
    )
