"""Getting the job an order: adopt the one named (``order_id``), or choose servers, rent
the first that takes the order, wait for it and verify it inside the free window.

The rules are ``clore.rentals``' (``choose``: quality floors, payable, the bad-host list;
``race_lost``; ``verify_and_settle``), driven from the event loop: this is
``rentals.place_verified`` for an async core, with the jobs' ledger around each
``create_order``:

- ``confirm`` (``_proposal``) is asked once, just before the first attempt (or before an
  ``order_id`` is taken on); a no ends the job ``declined`` with nothing rented;
- before each attempt an intent is written (``_ledger``) and the record says
  ``renting``; after it the intent is ``rented`` (the record has the order) or ``void``;
- a lost race (rented meanwhile, price moved, offline) moves on to the next candidate;
- an order that may exist (``OrderUnconfirmedError``) stops: never a second rental; the
  intent stays ``unconfirmed`` for ``resume_job`` to reconcile;
- a machine failing verification while its creation fee is still free is cancelled with
  the findings as its issue and its host listed as bad; the next candidate the list does
  not rule out is rented, at most ``verify_tries`` orders; a machine that could not be
  logged in to stops there (the credentials, not the host, are the likely cause); past the
  free window only a failed GPU check cancels (``cancel_when_asked``);
- an order create_order (or adopt) read provisioned already, whose SSH answers, is ready
  without another ``my_orders``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from clore._errors import CloreError, OrderExpiredError, OrderUnconfirmedError, WaitTimeoutError
from clore._wire import Order
from clore.jobs._ledger import Ledger
from clore.jobs._money import account, bid_for, prepare_money
from clore.jobs._proposal import Confirm, confirmed, proposal_for
from clore.jobs._run import Finish, Run, Stop
from clore.workflows.state import new_owner, release_owner

if TYPE_CHECKING:
    from clore.rentals import Candidate
    from clore.rentals.verify import Settlement
    from clore.workflows.plan import RentSpec

__all__ = ["acquire", "adopt", "wait_ready"]

_ALPHANUMERIC = string.ascii_letters + string.digits
#: How long one wait_for_order call may block before the runner looks for a stop.
_WAIT_CHUNK = 10.0
#: Seconds the runner waits for the SSH banner of an order that looks ready.
_PROBE_TIMEOUT = 5.0


def _fail(message: str) -> Stop:
    return Stop(Finish("error", message))


def _password() -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(24))


def _rent_spec(run: Run) -> tuple[RentSpec, str]:
    """What create_order sends (a fresh random password, the renter's public key), and
    the password."""
    from clore.rentals import default_public_key, parse_ports
    from clore.workflows.plan import RentSpec

    password = _password()
    key_text: str | None = None
    key_file = run.options.ssh_key
    if key_file is not None:
        from clore.rentals import read_public_key

        key_text = read_public_key(key_file, "ssh_key").text
    else:
        try:
            found = default_public_key()
        except ValueError:
            found = None
        if found is not None:
            key_text, key_file = found.text, found.path
    run.ssh_key_file = key_file
    ports = parse_ports(list(run.spec.ports)) or {"22": "tcp"}
    ports.setdefault("22", "tcp")
    rent = RentSpec(
        image=run.spec.image,
        order_type="spot" if run.spec.spot else "on-demand",
        currency=run.currency,
        ports=ports,
        env=None,  # the job's env goes to the command, not to the container
        ssh_password=password,
        ssh_key=key_text,
        lock_price=True,
    )
    return rent, password


async def _candidates(run: Run) -> list[Candidate]:
    """The servers to try, best first (a named server alone)."""
    from clore.market.filters import FilterError, parse_filters
    from clore.market.pricing import PriceContext
    from clore.rentals import Candidate
    from clore.rentals.choice import choose

    spec = run.spec
    servers = await run.race(run.api.marketplace())
    await prepare_money(run, servers)
    if spec.server_id is not None:
        listed = next((s for s in servers if s.id == spec.server_id), None)
        if listed is None:
            raise _fail(f"server {spec.server_id} is not available on the marketplace")
        return [Candidate(listed.id, listed)]
    try:
        filters = parse_filters(spec.filters)
    except FilterError as exc:
        raise _fail(f"filter: {exc}") from None
    ctx = PriceContext(run.currency, run.rates)
    choice = choose(servers, filters, ctx, spot=spec.spot, floors=run.options.floors)
    kept = [s for s in choice.candidates if s.id not in run.lost_servers]
    if not kept:
        left = choice.describe_left_out()
        why = f" ({left})" if left else ""
        raise _fail(f"no available server matches{why}")
    first = kept[0]
    price = first.price_per_day(run.currency, spot=spec.spot)
    left_out = choice.describe_left_out()
    run.emit(
        "server_chosen",
        f"server {first.id} is the best of {len(kept)} candidate(s)"
        + (f"; left out: {left_out}" if left_out else ""),
        server_id=first.id,
        order_id=None,
        price=price,
        currency=run.currency,
        spot=spec.spot,
        candidates=len(kept),
        left_out=left_out,
    )
    return [Candidate(s.id, s) for s in kept]


async def _ssh_answers(endpoint: tuple[str, int], timeout: float = _PROBE_TIMEOUT) -> bool:
    """True when ``endpoint`` sends an SSH banner (what ``wait_for_order`` waits for)."""
    from clore._flows import banner_read, ssh_banner

    data = b""

    async def read() -> None:
        nonlocal data
        reader, writer = await asyncio.open_connection(*endpoint)
        try:
            while not banner_read(data):
                chunk = await reader.read(1024)
                if not chunk:
                    break
                data += chunk
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await asyncio.wait_for(read(), timeout)
    return ssh_banner(data)


def _ready(run: Run, ready: Order, start: float) -> Order:
    endpoint = ready.ssh_endpoint
    seconds = run.clock.monotonic() - start
    run.order = ready
    run.emit(
        "ready",
        f"order {ready.id} is ready after {seconds:.1f} s"
        + (f" (ssh {endpoint[0]}:{endpoint[1]})" if endpoint else ""),
        host=None if endpoint is None else endpoint[0],
        port=None if endpoint is None else endpoint[1],
        seconds=round(seconds, 3),
    )
    return ready


async def wait_ready(run: Run, order: Order) -> Order:
    """Wait until the order's SSH answers (at most ``wait_timeout`` of the runner's clock,
    in chunks so that a stop is seen); ``Stop`` when the order ends meanwhile. An
    ``order`` just read (create_order's, adopt's) that is provisioned already and whose
    SSH answers is ready without another ``my_orders``."""
    start = run.clock.monotonic()
    budget = run.options.wait_timeout
    endpoint = order.ssh_endpoint
    if order.ready and endpoint is not None and await run.race(_ssh_answers(endpoint)):
        return _ready(run, order, start)
    while True:
        left = budget - (run.clock.monotonic() - start)
        if left <= 0:
            raise Stop(Finish("error", f"order {order.id} was not ready within {budget:g} s"))
        try:
            ready = await run.race(run.api.wait_for_order(order.id, min(_WAIT_CHUNK, left)))
        except WaitTimeoutError:
            continue
        except OrderExpiredError:
            raise Stop(
                Finish("order_lost", f"order {order.id} ended before it was ready")
            ) from None
        return _ready(run, ready, start)


async def adopt(run: Run, order_id: int, *, created: bool) -> Order:
    """Take the running order ``order_id`` (given by the user, or found again on resume)."""
    from clore.rentals import credentials_for

    found = await run.race(run.api.find_order(order_id))
    if found is None:
        raise _fail(f"order {order_id} is not among your orders")
    if found.expired:
        raise Stop(Finish("order_lost", f"order {order_id} has ended"))
    run.order = found
    run.created = created
    run.currency = found.currency or run.currency
    if run.options.credentials is not None and not created:
        run.credentials = run.options.credentials
    else:
        run.credentials = credentials_for(found)
    if run.credentials is None:
        raise _fail(
            f"no way to log in to order {order_id}: pass credentials (a key or the "
            "password it was rented with)"
        )
    return found


async def acquire(run: Run, confirm: Confirm | None = None) -> None:
    """Give the job its order (``run.order``, ready, verified unless ``verify`` is off);
    ``confirm`` is asked first (``clore.jobs._proposal``)."""
    from clore.rentals import Candidate

    spec = run.spec
    if spec.order_id is not None and not run.record.orders:
        order = await adopt(run, spec.order_id, created=False)
        try:
            await prepare_money(run, server_id=order.si)
            proposal = proposal_for(
                run, Candidate(order.si), float(order.price), candidates=1, order=order
            )
            await confirmed(run, confirm, proposal)
        except Stop:
            run.order = None  # not taken on (declined, a bad limit, stopped): left alone
            raise
        base = float(order.spend)
        run.save(
            order_id=order.id,
            order_ct=float(order.ct),
            server_id=order.si,
            created_order=False,
            orders=[*run.record.orders, order.id],
            spend_base=base,
            currency=run.currency,
            state="starting",
            started_at=run.record.started_at or float(order.ct),
        )
        run.emit(
            "rented",
            f"using order {order.id} on server {order.si} (not rented by this job: it is "
            + ("left running at the end" if spec.keep else "cancelled at the end")
            + ")",
            price=float(order.price),
            currency=run.currency,
            spot=order.spot,
            adopted=True,
        )
        await wait_ready(run, order)
        return
    candidates = await _candidates(run)
    await _place(run, candidates, confirm)


async def _place(run: Run, candidates: list[Candidate], confirm: Confirm | None) -> None:
    from clore.rentals import RentalLogins, avoid_bad_hosts, race_lost
    from clore.rentals.verify import BadHosts, BadHostsFileError, Credentials

    spec = run.spec
    ledger = Ledger(run.store.root / "ledger.json", run.client)
    bad_hosts = BadHosts()
    remaining = list(candidates)
    lost = 0
    verified_orders = 0
    asked = False
    owner = new_owner()
    try:
        while remaining:
            candidate = remaining.pop(0)
            rent, password = _rent_spec(run)
            price = bid_for(run, candidate) if spec.spot else candidate.listed_price(run.currency)
            try:
                rent.preview(candidate.server_id, price)  # bad settings: nothing is sent
            except ValueError as exc:
                raise _fail(f"the order cannot be made: {exc}") from None
            run.check()
            if not asked:
                asked = True
                assert price is not None
                proposal = proposal_for(run, candidate, price, candidates=len(candidates))
                await confirmed(run, None if run.record.orders else confirm, proposal)
            attempt = len(run.record.orders) + 1
            run.emit(
                "renting",
                f"renting server {candidate.server_id}"
                + (" with a spot bid of " if spec.spot else " at ")
                + f"{run.money(price)}/day",
                server_id=candidate.server_id,
                order_id=None,
                price=price,
                currency=run.currency,
                spot=spec.spot,
                bid=price if spec.spot else None,
                attempt=attempt,
            )
            assert price is not None
            intent = ledger.intend(
                job_id=run.job_id,
                server_id=candidate.server_id,
                price=price,
                currency=run.currency,
                owner=owner,
                at=run.clock.time(),
                server_at=run.now(),
            )
            run.save(state="renting", rental_intent=intent.id, server_id=candidate.server_id)

            def made(order: Order, intent_id: str = intent.id) -> None:
                # Cancelled while create_order ran: the ending cancels what it made.
                ledger.finish(intent_id, "rented", order.id, "rented")
                run.order, run.created = order, True
                run.save(
                    order_id=order.id,
                    created_order=True,
                    rental_intent=None,
                    orders=[*run.record.orders, order.id],
                    currency=run.currency,
                )

            try:
                # Never given up half way: the outcome must be known (ledger, record).
                arguments = rent.arguments(candidate.server_id, price)
                order = await _whole(run.api.create_order(**arguments), made)
            except OrderUnconfirmedError as exc:
                ledger.finish(intent.id, "unconfirmed", None, "create_order unconfirmed")
                raise Stop(
                    Finish(
                        "error",
                        f"the order on server {candidate.server_id} may exist ({exc}); not "
                        "tried on another server: `clore jobs resume` finds it once it shows",
                    )
                ) from None
            except CloreError as exc:
                ledger.finish(intent.id, "void", None, f"refused: {type(exc).__name__}")
                run.save(rental_intent=None)
                if not race_lost(exc):
                    raise _fail(f"renting server {candidate.server_id} failed: {exc}") from None
                lost += 1
                reason = getattr(exc, "error", None) or type(exc).__name__
                run.emit(
                    "rent_skipped",
                    f"server {candidate.server_id} was not rented ({reason})",
                    server_id=candidate.server_id,
                    order_id=None,
                    reason=str(reason),
                )
                if lost >= run.options.tries:
                    raise _fail(f"{lost} servers were taken before they could be rented") from None
                continue
            ledger.finish(intent.id, "rented", order.id, "rented")
            run.order = order
            run.listing = candidate.server
            run.created = True
            try:
                RentalLogins().remember(order, public_key=run.ssh_key_file, password=password)
            except (OSError, ValueError) as exc:
                run.emit(
                    "warning",
                    f"could not remember the login of order {order.id}: {exc}",
                    warning=str(exc),
                )
            keys: tuple[Path, ...] = ()
            if run.ssh_key_file is not None:
                from clore.rentals import private_key_beside

                private = private_key_beside(run.ssh_key_file)
                keys = () if private is None else (private,)
            run.credentials = Credentials(password=password, key_files=keys)
            run.save(
                state="starting",
                order_id=order.id,
                order_ct=float(order.ct),
                server_id=order.si,
                created_order=True,
                orders=[*run.record.orders, order.id],
                spend_base=0.0,
                currency=run.currency,
                started_at=run.record.started_at or float(order.ct),
            )
            run.register_limits()
            run.emit(
                "rented",
                f"rented server {order.si} as order {order.id} at "
                f"{run.money(float(order.price))}/day" + (" (spot)" if order.spot else ""),
                price=float(order.price),
                currency=run.currency,
                spot=order.spot,
                adopted=False,
            )
            ready = await wait_ready(run, order)
            if not spec.verify:
                return
            verified_orders += 1
            settled = await _verify(run, ready, candidate, bad_hosts)
            if settled is None:
                return
            with contextlib.suppress(BadHostsFileError):
                remaining, _ = avoid_bad_hosts(remaining, bad_hosts.load())
            reachable = settled.report.reachable
            following = remaining[0].server_id if remaining and reachable else None
            if verified_orders >= run.options.verify_tries:
                following = None
            _failed_event(run, ready, settled, following)
            await account(run, ready.id)
            run.order = None
            run.save(order_id=None, order_ct=None, state="renting")
            if not reachable:
                raise _fail(
                    f"could not log in to order {ready.id} to verify it; it was cancelled "
                    "in the free window and no other server was tried"
                )
            if verified_orders >= run.options.verify_tries:
                raise _fail(
                    f"{verified_orders} machine(s) failed verification (verify_tries "
                    f"{run.options.verify_tries})"
                )
        raise _fail("no other candidate is left to rent")
    finally:
        release_owner(owner)


async def _whole(awaitable: Awaitable[Order], made: Callable[[Order], None]) -> Order:
    """Await ``awaitable`` to its end even when the task is cancelled meanwhile: the
    order it made goes to ``made`` first, then the cancellation is raised."""
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError as cancel:
        with contextlib.suppress(Exception):
            made(await task)
        raise cancel


async def _verify(
    run: Run, order: Order, candidate: Candidate, bad_hosts: object
) -> Settlement | None:
    """Verify and settle ``order``; None when it is kept, else the settlement of an order
    that was cancelled (the caller moves on). ``Stop`` when it cannot be settled."""
    from clore.rentals import known_hosts_path
    from clore.rentals.verify import (
        BadHosts,
        VerifyOptions,
        acancel_failed,
        averify_and_settle,
        cancel_when_asked,
    )

    assert isinstance(bad_hosts, BadHosts) and run.credentials is not None
    options = run.options.verify_options or VerifyOptions()
    if options.known_hosts is None:
        options = replace(options, known_hosts=known_hosts_path(order))
    start = run.clock.monotonic()
    settled = await run.race(
        averify_and_settle(
            run.api,
            order,
            run.credentials,
            created_by_us=True,
            listing=candidate.server if candidate.server is not None else order,
            bad_hosts=bad_hosts,
            options=options,
        )
    )
    seconds = round(run.clock.monotonic() - start, 3)
    report = settled.report
    if settled.outcome == "kept":
        run.emit(
            "verified",
            f"order {order.id} passed verification ({report.verdict})",
            verdict=report.verdict,
            seconds=seconds,
        )
        return None
    failed = [c.name for c in report.failed()]
    if settled.outcome == "ask":
        if not cancel_when_asked(report):
            run.emit(
                "verify_failed",
                f"order {order.id} failed {', '.join(failed)} past the free window; keeping "
                "it (only a failed GPU check cancels then)",
                verdict=report.verdict,
                failed=failed,
                cancelled=False,
                in_window=False,
                next_server_id=None,
            )
            return None
        settled = await acancel_failed(run.api, settled, order, bad_hosts=bad_hosts)
    if settled.outcome == "cancel_failed":
        raise _fail(
            f"order {order.id} failed verification and cancelling it failed: {settled.error}"
        )
    return settled


def _failed_event(run: Run, order: Order, settled: Settlement, following: int | None) -> None:
    failed = [c.name for c in settled.report.failed()]
    where = (
        "inside the free window (no creation fee)"
        if settled.in_window
        else "past the free window (the creation fee is due)"
    )
    then = f"; trying server {following} next" if following is not None else ""
    run.emit(
        "verify_failed",
        f"order {order.id} on server {order.si} failed verification "
        f"({', '.join(failed) or settled.report.verdict}) and was cancelled {where}{then}",
        verdict=settled.report.verdict,
        failed=failed,
        cancelled=True,
        in_window=settled.in_window,
        next_server_id=following,
    )
