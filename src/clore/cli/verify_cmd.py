"""``clore verify ORDER``: log in to a rented machine over SSH, compare it with its
listing (``clore.rentals.verify``), print the report (a table, or ``--json``: the report's
schema version 1) and, with ``--cancel-if-bad``, cancel it when it fails.

Exit 0 when the verdict is ok or warn, 1 when it is fail (the report is printed either
way). The order was not created by this command, so it is cancelled only when
``--cancel-if-bad`` names it: inside the free window at once (the findings as the cancel's
issue, the host on the bad-host list), later after asking (``--yes``: only a hard failure
cancels). Logging in uses ``-i``/``--ssh-password`` when given, else what ``rent``
remembered for the order, else the default key, else the ssh-agent.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from clore.cli._context import EXIT_API, EXIT_USAGE, AppContext, CliError, pass_app
from clore.cli._output import json_option
from clore.cli._params import Id

if TYPE_CHECKING:
    from clore import Order
    from clore.rentals.verify import Report, Settlement

__all__ = ["verify"]


def _settlement_doc(settled: Settlement | None) -> dict[str, Any] | None:
    if settled is None:
        return None
    import msgspec

    return {
        "outcome": settled.outcome,
        "reason": settled.reason,
        "in_window": settled.in_window,
        "elapsed": settled.elapsed,
        "issue": settled.issue,
        "bad_host": None if settled.bad_host is None else msgspec.to_builtins(settled.bad_host),
        "error": settled.error,
    }


def _login(
    app: AppContext, order: Order, identity: Path | None, password: str | None, user: str
) -> Any:
    from clore.rentals import LoginsFileError, credentials_for

    try:
        found = credentials_for(order, identity=identity, password=password, user=user)
    except LoginsFileError as exc:
        raise CliError(f"{exc} (or give -i PRIVATE_KEY / --ssh-password)", EXIT_USAGE) from None
    if found is None:
        raise CliError(
            f"no way to log in to order {order.id}: it was not rented from here (the API "
            "never returns an order's password or key) and no default key or ssh-agent was "
            "found; give -i PRIVATE_KEY or --ssh-password",
            EXIT_USAGE,
        )
    return found


def _settle(app: AppContext, order: Order, report: Report, yes: bool) -> Settlement:
    from clore.cli._billing import still_billing
    from clore.cli._verifying import VerifyClient, ask_to_cancel, cancel_refused, settled_line
    from clore.rentals.verify import BadHosts, cancel_failed, settle

    client = VerifyClient(app)
    bad_hosts = BadHosts()
    settled = settle(
        client, order, report, created_by_us=False, cancel_id=order.id, bad_hosts=bad_hosts
    )
    if settled.outcome == "ask":
        if ask_to_cancel(app, settled, yes=yes):
            settled = cancel_failed(client, settled, order, bad_hosts=bad_hosts)
        else:
            app.out.info(f"not cancelled: {still_billing(order.id, ready=True)}")
            return settled
    if settled.outcome == "cancelled" and settled.in_window:
        app.out.info(settled_line(settled, order.si))
    elif settled.outcome == "cancelled":
        app.out.info(
            f"order {order.id} failed verification and was cancelled as asked (past the "
            "free window: the creation fee is charged)"
        )
    elif settled.outcome == "cancel_failed":
        app.out.info(cancel_refused(settled))
    return settled


@click.command("verify")
@click.argument("order_id", type=Id(), metavar="ORDER")
@click.option(
    "-i",
    "--identity",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key to log in with (default: the one ORDER was rented with, else the "
    "default key's private half, else the ssh-agent).",
)
@click.option(
    "--ssh-password",
    metavar="TEXT",
    envvar="CLORE_SSH_PASSWORD",
    help="ORDER's SSH password (default: the one it was rented with; env CLORE_SSH_PASSWORD).",
)
@click.option("--user", default="root", show_default=True, help="Remote user.")
@click.option(
    "--no-load",
    is_flag=True,
    help="Do not load the GPUs: no throughput figure, PCIe links read idle.",
)
@click.option(
    "--cancel-if-bad",
    is_flag=True,
    help="Cancel ORDER when it fails: at once inside the free 10 minutes (findings sent as "
    "the issue, host put on the bad-host list), later after asking.",
)
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="With --cancel-if-bad past the free window: do not ask; cancel only when a GPU "
    "check (count, model, memory, health) failed.",
)
@json_option
@pass_app
def verify(
    app: AppContext,
    order_id: int,
    identity: Path | None,
    ssh_password: str | None,
    user: str,
    no_load: bool,
    cancel_if_bad: bool,
    yes: bool,
) -> None:
    """Check ORDER's machine over SSH against its listing: GPUs, memory, power, PCIe,
    CUDA, CPU, RAM, disk, health and throughput.

    Prints one row per check (ok, warn, fail, skip; listed and measured values) and the
    verdict; exit 0 for ok or warn, 1 for fail. --json prints the report (schema v1).
    """
    from clore.cli._verifying import show_report, verify_options
    from clore.rentals.verify import TargetError, target_of
    from clore.rentals.verify import verify as run_verify

    if yes and not cancel_if_bad:
        raise CliError("--yes applies to --cancel-if-bad", EXIT_USAGE)
    order = app.api().get_order(order_id)
    if order.expired:
        raise CliError(f"order {order_id} has ended: nothing to verify", EXIT_API)
    try:
        target_of(order)
    except TargetError as exc:
        raise CliError(f"{exc} (`clore order {order_id} --wait` waits for it)", EXIT_API) from None
    credentials = _login(app, order, identity, ssh_password, user)
    with app.out.waiting(f"verifying order {order_id} over SSH (at most a minute)"):
        report = run_verify(order, credentials, options=verify_options(order, load=not no_load))
    settled = None
    if app.out.json_mode:
        if cancel_if_bad and not report.passed:
            settled = _settle(app, order, report, yes)
        document = report.to_builtins()
        if cancel_if_bad:
            document["settlement"] = _settlement_doc(settled)
        app.out.json(document)
    else:
        show_report(app, report, stdout=True)
        if cancel_if_bad and not report.passed:
            settled = _settle(app, order, report, yes)
    if not report.passed and settled is None:
        app.out.info(
            f"order {order_id} failed verification: `clore verify {order_id} --cancel-if-bad` "
            f"cancels it (free until 10 minutes after its creation), `clore cancel {order_id}` "
            "too"
        )
    if not report.passed:
        raise click.exceptions.Exit(EXIT_API)
