"""The jobs' rental ledger: an intent before each ``create_order``, so that renting is
exactly once across a killed runner and its ``resume_job`` (``clore.workflows.state``).

The ledger is ``data_dir()/"jobs"/"ledger.json"``, or, when the client paces in a
fleet's Redis, that Redis (``shared_state``): a job resumed on another machine finds
the intent of the one that died. Each ``Rental``'s ``note`` names its job. An intent is
``pending`` while ``create_order`` runs, ``rented`` with the order id after it, ``void``
when the server refused, ``unconfirmed`` when the outcome is unknown; ``settle``
reconciles a pending or unconfirmed intent with ``my_orders`` (an order on its server
created at or after it), waiting out the grace period before calling it void.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import msgspec

from clore._wire import Order
from clore.workflows.state import Rental, RentalStatus, StateFile, reconcile, shared_state

__all__ = ["GRACE", "JobsLedger", "Ledger"]

#: Seconds (runner's clock) after an intent before "no order found" makes it void.
GRACE: Final = 60.0
#: Intents kept (the newest); settled ones older than this many are dropped.
_KEEP: Final = 500


class JobsLedger(msgspec.Struct):
    """The ledger file: every job's rental intents."""

    version: int = 1
    rentals: list[Rental] = []


class Ledger:
    """The ledger at ``path`` (the jobs directory's ``ledger.json``), where ``client``
    keeps shared state."""

    def __init__(self, path: Path, client: object) -> None:
        state = shared_state(StateFile(path), client)
        assert state is not None
        self.state = state

    def _load(self) -> JobsLedger:
        return self.state.read(JobsLedger) or JobsLedger()

    def get(self, rental_id: str) -> Rental | None:
        """The intent ``rental_id``, or None."""
        return next((r for r in self._load().rentals if r.id == rental_id), None)

    def intend(
        self,
        *,
        job_id: str,
        server_id: int,
        price: float,
        currency: str,
        owner: str,
        at: float,
        server_at: float,
    ) -> Rental:
        """Write a pending intent for ``job_id`` on ``server_id`` before renting it."""
        rental = Rental(
            server_id=server_id,
            price=price,
            currency=currency,
            intent_at=at,
            intent_server_at=server_at,
            owner=owner,
            pid=os.getpid(),
            note=f"job {job_id}",
        )
        with self.state.locked():
            ledger = self._load()
            ledger.rentals.append(rental)
            settled = [r for r in ledger.rentals if r.status in ("rented", "void")]
            if len(ledger.rentals) > _KEEP and settled:
                drop = {r.id for r in settled[: len(ledger.rentals) - _KEEP]}
                ledger.rentals = [r for r in ledger.rentals if r.id not in drop]
            self.state.write(ledger)
        return rental

    def finish(self, rental_id: str, status: RentalStatus, order_id: int | None, note: str) -> None:
        """Settle the intent ``rental_id`` (its job's note kept in front)."""
        with self.state.locked():
            ledger = self._load()
            for rental in ledger.rentals:
                if rental.id == rental_id:
                    rental.status = status
                    rental.order_id = order_id
                    rental.note = f"{rental.note.split(':', 1)[0]}: {note}"
            self.state.write(ledger)

    def settle(self, rental_id: str, orders: Iterable[Order], now: float) -> Rental | None:
        """Reconcile the intent ``rental_id`` with ``orders`` (``my_orders`` with the
        completed ones) at runner time ``now``; the intent as it is afterwards."""
        listed = list(orders)
        with self.state.locked():
            ledger = self._load()
            changed = reconcile(
                ledger.rentals, listed, now, grace=GRACE, in_flight=self.state.in_flight
            )
            if changed:
                self.state.write(ledger)
        return next((r for r in ledger.rentals if r.id == rental_id), None)
