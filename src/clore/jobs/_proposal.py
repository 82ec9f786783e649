"""The question before a job commits money: ``Proposal`` (what it is about to rent or use)
and ``ask``, which puts it to the caller's ``confirm`` callback.

``run_job(..., confirm=callback)`` calls ``callback(proposal)`` once, with the server
chosen, just before the job's first ``create_order`` (or, with ``order_id``, before the
order given is used), after everything that can be checked without renting was checked.
True goes on; False ends the job as ``declined``: nothing rented, nothing spent, exit 1.
The callback may be a coroutine function (``arun_job``'s callers can await a person).
A callback that raises is a "no": a failing question never rents.

It is asked once. A later ``create_order`` — the confirmed server was taken before the
order was made, its machine failed verification, a recovery after a lost order — rents
the next candidate of the same choice (the filters, the price cap, the quality floors)
without asking again; ``candidates`` says how many there are.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clore.jobs._run import Finish, Run, Stop

if TYPE_CHECKING:
    from clore._wire import Order, Server
    from clore.rentals import Candidate

__all__ = ["Confirm", "Proposal", "ask", "confirmed", "proposal_for"]

log = logging.getLogger("clore.jobs")


@dataclass(frozen=True)
class Proposal:
    """What the job is about to rent (or, with ``order_id``, use), for ``confirm``.

    ``server_id``/``server``: the server (its listing; None when not looked up).
    ``price_per_day``: what the order costs per day in ``currency`` (the order's): the
    listed on-demand price, or the spot bid with ``spot``. ``order``: the order of yours
    the job would use instead (nothing new rented; cancelled at the end unless ``keep``).
    ``candidates``: servers that matched (the next are tried when this one is taken).
    The limits: ``max_spend`` (spend plus fees, in ``currency``; None: none),
    ``max_time`` and ``idle`` (seconds), ``idle_threshold`` (percent GPU), and ``keep``,
    ``verify`` as the job has them.
    """

    job_id: str
    name: str
    command: str
    server_id: int
    server: Server | None
    price_per_day: float
    currency: str
    spot: bool
    candidates: int
    max_spend: float | None
    max_time: float | None
    idle: float | None
    idle_threshold: float
    keep: bool
    verify: bool
    order: Order | None = None

    @property
    def price_per_hour(self) -> float:
        """``price_per_day`` / 24."""
        return self.price_per_day / 24.0


#: ``confirm``: called with the ``Proposal``; True (or an awaitable of True) rents.
Confirm = Callable[[Proposal], "bool | Awaitable[bool]"]


async def ask(confirm: Confirm, proposal: Proposal) -> bool:
    """``confirm``'s answer to ``proposal``; False when it raises."""
    try:
        answer = confirm(proposal)
        if inspect.isawaitable(answer):
            answer = await answer
    except Exception:
        log.exception("job %s: the confirm callback failed; nothing is rented", proposal.job_id)
        return False
    return answer is True


def proposal_for(
    run: Run,
    candidate: Candidate,
    price: float,
    *,
    candidates: int,
    order: Order | None = None,
) -> Proposal:
    """The ``Proposal`` for renting ``candidate`` at ``price`` per day (or, with ``order``,
    for using that order)."""
    spec = run.spec
    return Proposal(
        job_id=run.job_id,
        name=spec.name,
        command=spec.command,
        server_id=candidate.server_id,
        server=candidate.server,
        price_per_day=price,
        currency=run.currency,
        spot=spec.spot if order is None else order.spot,
        candidates=candidates,
        max_spend=run.max_spend,
        max_time=spec.max_time,
        idle=spec.idle,
        idle_threshold=spec.idle_threshold,
        keep=spec.keep,
        verify=spec.verify and order is None,
        order=order,
    )


async def confirmed(run: Run, confirm: Confirm | None, proposal: Proposal) -> None:
    """Put ``proposal`` to ``confirm`` (none: go on); ``Stop`` (``declined``) on a no."""
    if confirm is None:
        return
    if not await run.race(ask(confirm, proposal)):
        what = (
            f"order {proposal.order.id} was not used"
            if proposal.order is not None
            else "nothing was rented"
        )
        raise Stop(Finish("declined", f"not confirmed: {what}"))
    run.check()
