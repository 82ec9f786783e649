"""``rent --verify``: place the order, wait for it, verify it over SSH and act inside the
free 10 minutes (``clore.rentals.place_verified``), and the pieces ``clore verify`` shares.

A machine that fails verification while its creation fee is still free is cancelled by
the library, with the findings as the cancel's ``issue`` and the host on the bad-host
list; with ``--cheapest`` the next candidate is rented, up to ``--verify-tries`` orders.
Outside the window the user is asked (``--yes``: ``cancel_when_asked``, only a hard
failure cancels). Every way of stopping with an order left running — the user keeps a
failed machine, a cancel is refused, Ctrl-C, an error — ends in the still-billing line.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from clore.cli._context import EXIT_API, EXIT_USAGE, AppContext, CliError
from clore.cli._placing import Hooks, Placement, created, report_access, wait_ready

if TYPE_CHECKING:
    from clore import Order
    from clore.cli._orderopts import OrderSpec
    from clore.rentals import Candidate, Placed
    from clore.rentals.verify import BadHosts, Credentials, Report, Settlement, VerifyOptions
    from clore.workflows import RentSpec

__all__ = [
    "VerifyClient",
    "ask_to_cancel",
    "rent_credentials",
    "settled_line",
    "show_report",
    "verify_options",
]


class VerifyClient:
    """The client as verification settles with it: the CLI's announced calls, and the
    server's time as the invocation estimates it (``AppContext.server_time``)."""

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.api = app.api()

    def create_order(self, *args: Any, **kwargs: Any) -> Order:
        return self.api.create_order(*args, **kwargs)

    def cancel_order(self, order_id: int, issue: str | None = None) -> None:
        self.api.cancel_order(order_id, issue)

    def server_time(self) -> float:
        return self.app.server_time()

    @property
    def time_scale(self) -> float:
        """Server seconds per client second (a sped-up sandbox: the margin scales)."""
        scale = getattr(self.app.client(), "time_scale", 1.0)
        return float(scale) if isinstance(scale, int | float) else 1.0


def verify_options(order: Order, *, load: bool = True) -> VerifyOptions:
    """The verification settings for ``order``: its own known-hosts file (accept-new)."""
    from clore.rentals import known_hosts_path
    from clore.rentals.verify import VerifyOptions

    return VerifyOptions(known_hosts=known_hosts_path(order), load=load)


def rent_credentials(spec: OrderSpec) -> Credentials:
    """How ``rent --verify`` will log in to the new machine: the private half of the key
    file sent, the password, or the ssh-agent for a key given inline; exit 2 (nothing
    sent) when there is no way to log in."""
    from clore.rentals import private_key_beside, ssh_forwarded
    from clore.rentals.verify import Credentials

    if not ssh_forwarded(spec.ports):
        raise CliError("--verify logs in over SSH: forward port 22 (--ports 22:tcp,...)", 2)
    private = None if spec.ssh_key_path is None else private_key_beside(spec.ssh_key_path)
    keys = () if private is None else (private,)
    agent = not keys and spec.ssh_key is not None and bool(os.environ.get("SSH_AUTH_SOCK"))
    if not keys and not spec.ssh_password and not agent:
        where = "" if spec.ssh_key_path is None else f" ({spec.ssh_key_path} has none beside it)"
        raise CliError(
            f"--verify must log in, but no private key goes with the key sent{where}: give "
            "--ssh-key FILE.pub with its private key beside it, --ssh-password, or load the "
            "key into ssh-agent",
            EXIT_USAGE,
        )
    return Credentials(password=spec.ssh_password, key_files=keys, agent=agent)


def show_report(app: AppContext, report: Report, *, stdout: bool = False) -> None:
    """The report's table: on stderr (stdout holds the rent's result), or on stdout for
    ``clore verify``; cut to the terminal's width on one."""
    import shutil

    from clore.rentals.verify import render_table

    tty = app.out.tty if stdout else app.out.err_tty
    width = shutil.get_terminal_size().columns if tty else None
    for line in render_table(report, width=width):
        if stdout:
            app.out.echo(line)
        else:
            app.out.info(line)


def settled_line(settled: Settlement, server_id: int | None) -> str:
    """What a cancel in the free window did, in one line."""
    where = f" (server {server_id})" if server_id is not None else ""
    listed = " and put on the bad-host list (`clore hosts bad`)" if settled.bad_host else ""
    return (
        f"order {settled.order_id}{where} failed verification and was cancelled "
        f"{settled.elapsed:.0f} s after creation, inside the free window (no creation fee), "
        f"with the findings as its issue{listed}"
    )


def ask_to_cancel(app: AppContext, settled: Settlement, *, yes: bool) -> bool:
    """Outside the free window: the user's answer, or with ``--yes`` the documented rule
    (``cancel_when_asked``: only a hard failure cancels)."""
    from clore.rentals.verify import cancel_when_asked

    if yes:
        return cancel_when_asked(settled.report)
    app.out.info(settled.reason)
    try:
        return click.confirm(
            f"Cancel order {settled.order_id}? (the creation fee is due either way)",
            default=True,
            err=True,
        )
    except click.Abort:
        click.echo(err=True)
        return False


def _failed_checks(report: Report) -> str:
    return ", ".join(c.name for c in report.failed()) or "verification"


def after_ask(
    app: AppContext,
    client: VerifyClient,
    settled: Settlement,
    order: Order,
    *,
    yes: bool,
    bad_hosts: BadHosts | None,
) -> Settlement:
    """Settle an ``ask``: cancel when the user (or the ``--yes`` rule) says so; raise the
    still-billing error when the order is kept or the cancel is refused."""
    from clore.cli._billing import still_billing
    from clore.rentals.verify import cancel_failed

    if not ask_to_cancel(app, settled, yes=yes):
        rule = " (--yes cancels only when a GPU check fails)" if yes else ""
        raise CliError(
            f"order {order.id} failed verification ({_failed_checks(settled.report)}) and "
            f"was not cancelled{rule}; {still_billing(order.id, ready=True)}",
            EXIT_API,
        )
    done = cancel_failed(client, settled, order, bad_hosts=bad_hosts)
    if done.outcome == "cancel_failed":
        raise CliError(cancel_refused(done), EXIT_API)
    return done


def cancel_refused(settled: Settlement) -> str:
    """A refused cancel: the order may still be running, and billing."""
    from clore.cli._billing import still_billing

    return (
        f"order {settled.order_id} failed verification and cancelling it failed "
        f"({settled.error}); {still_billing(settled.order_id, ready=True)}"
    )


def place_and_verify(
    app: AppContext,
    candidates: list[Candidate],
    rent: RentSpec,
    spec: OrderSpec,
    placement: Placement,
    hooks: Hooks,
) -> None:
    """``rent --verify`` (see the module docstring); prints the kept order's access."""
    from clore.cli._billing import billing_error
    from clore.rentals import place_verified
    from clore.rentals.verify import BadHosts

    credentials = rent_credentials(spec)
    bad_hosts = BadHosts()
    client = VerifyClient(app)
    current: list[Order] = []
    ready: list[bool] = [False]
    rejected: list[dict[str, Any]] = []

    def on_placed(placed: Placed) -> None:
        current[:] = [placed.order]
        ready[0] = False
        created(app, placed.order, placed.candidate.server, spec, placement)

    def wait(order: Order) -> Order:
        found = wait_ready(app, order, placement)
        ready[0] = True
        app.out.info(f"verifying order {order.id} over SSH (at most a minute)")
        return found

    def on_settled(settled: Settlement, following: Candidate | None) -> None:
        show_report(app, settled.report)
        if settled.outcome == "cancelled":
            current.clear()
            server_id = settled.report.server_id
            rejected.append(
                {
                    "order_id": settled.order_id,
                    "server_id": server_id,
                    "verdict": settled.report.verdict,
                    "issue": settled.issue,
                    "bad_host": settled.bad_host is not None,
                }
            )
            app.out.info(settled_line(settled, server_id))
            if following is not None:
                app.out.info(f"trying server {following.server_id} next")

    try:
        result = place_verified(
            client,
            candidates,
            rent,
            credentials=lambda _order: credentials,
            wait=wait,
            bid=placement.spot_bid,
            tries=placement.tries,
            verify_tries=placement.verify_tries,
            bad_hosts=bad_hosts,
            options=verify_options,
            before=hooks.confirm,
            on_lost=hooks.lost,
            on_placed=on_placed,
            on_settled=on_settled,
        )
        settled = result.settlement
        if settled.outcome == "ask":
            settled = after_ask(
                app, client, settled, result.order, yes=placement.yes, bad_hosts=bad_hosts
            )
            current.clear()
            raise CliError(
                f"order {settled.order_id} failed verification and was cancelled as asked "
                "(past the free window: the creation fee is charged)",
                EXIT_API,
            )
        if settled.outcome == "cancel_failed":
            raise CliError(cancel_refused(settled), EXIT_API)
    except CliError:
        raise
    except BaseException as exc:
        if current:
            raise billing_error(exc, current[0].id, ready=ready[0]) from exc
        raise
    if settled.outcome == "cancelled" and not settled.report.reachable:
        ssh = settled.report.check("ssh")
        why = ssh.reason if ssh is not None else "could not log in"
        raise CliError(
            f"could not verify order {settled.order_id} ({why}); it was cancelled inside the "
            "free window (no creation fee) and no other server was tried: check the key or "
            "password it was rented with",
            EXIT_API,
        )
    if settled.outcome == "cancelled":
        count = len(rejected)
        raise CliError(
            f"{count} machine(s) failed verification and were cancelled inside the free "
            f"window (no creation fee); stopped after --verify-tries {placement.verify_tries}"
            if count >= placement.verify_tries
            else f"{count} machine(s) failed verification and were cancelled inside the free "
            "window (no creation fee); no other matching server is left",
            EXIT_API,
        )
    extra = {"verification": settled.report.to_builtins(), "rejected": rejected}
    report_access(app, result.order, spec, placement, extra)
