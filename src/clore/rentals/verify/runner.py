"""Verifying one rental: log in, run the probes, compare, report (``verify``/``averify``).

The two differ only in how they wait: ``averify`` is a coroutine (the agent server),
``verify`` runs it with ``asyncio.run`` (the CLI, the job runner; not from inside a
running event loop). Neither raises for a machine that cannot be reached: the report then
holds one failed ``ssh`` check and no measurements.

Time: at most ``connect_timeout`` to log in plus ``probe_timeout`` for the probes (15 s
+ 40 s by default: under a minute of the renter's time, whatever the machine does); a
healthy machine takes the load (3 s) plus a second or two.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clore._wire import Order, Server
from clore.rentals.verify.checks import Check, evaluate, overall
from clore.rentals.verify.listing import Listing
from clore.rentals.verify.probes import parse
from clore.rentals.verify.report import Report
from clore.rentals.verify.script import ProbeOptions, probe_command
from clore.rentals.verify.ssh import (
    Credentials,
    SshFailure,
    Target,
    run_probe_command,
    target_of,
)

__all__ = ["VerifyOptions", "averify", "verify"]


@dataclass(frozen=True)
class VerifyOptions:
    """The knobs of a verification: GPU load seconds (and how long to wait for it to
    show), disk test size in MiB (0: none), ``load=False`` to skip the load (and with it
    the throughput figure and the link reading under load), the two timeouts in seconds,
    and a ``known_hosts`` file for accept-new host key checking (None: not checked)."""

    load_seconds: int = 3
    load_wait: int = 20
    disk_mb: int = 128
    load: bool = True
    connect_timeout: float = 15.0
    probe_timeout: float = 40.0
    known_hosts: Path | None = None

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "probe_timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value <= 600
            ):
                raise ValueError(f"{name} must be seconds in (0, 600], got {value!r}")
        self.probe_options()  # checks the rest

    def probe_options(self) -> ProbeOptions:
        return ProbeOptions(
            load_seconds=self.load_seconds,
            load_wait=self.load_wait,
            disk_mb=self.disk_mb,
            load=self.load,
        )


ListingSource = Listing | Server | Order | Mapping[str, Any]


def _resolve(
    target: Order | Target, listing: ListingSource | None
) -> tuple[Target, Listing, int | None]:
    if isinstance(target, Order):
        where = target_of(target)
        chosen = listing if listing is not None else target
        return where, chosen if isinstance(chosen, Listing) else Listing.of(chosen), target.id
    if listing is None:
        raise ValueError("verify: a bare address needs the listing to compare with")
    return target, listing if isinstance(listing, Listing) else Listing.of(listing), target.order_id


async def averify(
    target: Order | Target,
    credentials: Credentials,
    *,
    listing: ListingSource | None = None,
    options: VerifyOptions | None = None,
) -> Report:
    """Verify a rental: ``target`` is the order (its SSH endpoint and, unless ``listing``
    is given, its listing) or a ``Target`` address with a ``listing``.

    ``TargetError`` when the order has no SSH endpoint yet; everything after that is in
    the report.
    """
    opts = options or VerifyOptions()
    where, promised, order_id = _resolve(target, listing)
    started_at = time.time()
    started = time.monotonic()
    login = f"{credentials.username}@{where.host}:{where.port}"

    def finish(checks: list[Check], run_measured: Any) -> Report:
        return Report(
            verdict=overall(checks),
            order_id=order_id,
            server_id=promised.server_id,
            owner=promised.owner,
            host=where.host,
            port=where.port,
            started_at=started_at,
            seconds=round(time.monotonic() - started, 3),
            checks=checks,
            measured=run_measured,
        )

    try:
        run = await run_probe_command(
            where,
            credentials,
            probe_command(opts.probe_options()),
            connect_timeout=opts.connect_timeout,
            run_timeout=opts.probe_timeout,
            known_hosts=opts.known_hosts,
        )
    except SshFailure as exc:
        failed = Check(name="ssh", verdict="fail", listed=None, measured=None, reason=str(exc))
        return finish([failed], None)
    measured = parse(run.stdout)
    if run.timed_out:
        ssh = Check(
            name="ssh",
            verdict="fail",
            listed=None,
            measured=login,
            reason=f"logged in, but the probes did not finish within {opts.probe_timeout:g} s",
        )
    else:
        ssh = Check(
            name="ssh",
            verdict="ok",
            listed=None,
            measured=login,
            reason=f"logged in in {run.connect_seconds:.2f} s; probes took {run.run_seconds:.1f} s",
        )
    return finish([ssh, *evaluate(promised, measured)], measured)


def verify(
    target: Order | Target,
    credentials: Credentials,
    *,
    listing: ListingSource | None = None,
    options: VerifyOptions | None = None,
) -> Report:
    """``averify`` for code without an event loop (the CLI, the job runner)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(averify(target, credentials, listing=listing, options=options))
    raise RuntimeError("verify() cannot run inside an event loop: await averify() instead")
