"""``clore order ID``: one order's state, endpoints, price, spend and time left; ``--wait``
resumes waiting for it (an interrupted ``rent --wait``).

It also says how to connect with what this machine remembers of the order
(``rentals.RentalLogins``): the ssh command with ``-i`` the key it was rented with, that a
password was chosen (never the password), that ``clore open`` logs in to Jupyter; and the
limits registered for it and whether a guard enforces them right now (a live guard's
lease, ``workflows.guard``)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

import click

from clore.cli._automation import seconds_option
from clore.cli._context import AppContext, pass_app
from clore.cli._format import amount, day_and_hour, duration, gpu_text, timestamp
from clore.cli._orders import record
from clore.cli._output import json_option
from clore.cli._params import Id
from clore.cli._states import state_word
from clore.market import label

if TYPE_CHECKING:
    from clore import Order
    from clore.rentals import RentalLogin
    from clore.workflows import Limits

__all__ = ["order", "wait_for"]


@click.command()
@click.argument("order_id", type=Id(), metavar="ORDER")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait until ORDER is ready (SSH answers) first: resumes an interrupted `rent --wait`.",
)
@seconds_option("--timeout", 600.0, "How long --wait waits.")
@json_option
@pass_app
def order(app: AppContext, order_id: int, wait: bool, timeout: float) -> None:
    """Show one order: state, SSH and HTTP endpoints, price, spend and time left."""
    found = wait_for(app, order_id, timeout) if wait else _get(app, order_id)
    active: dict[int, bool] = {}
    if found.spot and not found.expired:
        market = app.api().spot_marketplace(found.si)
        active = {offer.offer_id: offer.active for offer in market.offers}
    now = app.server_time()
    spot_active = active.get(found.id)
    out = app.out
    saved = _saved_login(app, found)
    access = _access_doc(found, saved)
    limits, guards = _limits_doc(app, found)

    def human() -> None:
        cur = found.currency or "bitcoin"
        state = state_word(found, now, spot_active)
        pairs = [
            ("State", state),
            ("Server", f"{found.si} ({gpu_text(found)})"),
            ("Type", "spot" if found.spot else "on-demand"),
            ("Price", day_and_hour(float(found.price), cur)),
            ("Spend", f"{amount(float(found.spend), cur)} {label(cur)}"),
            ("Creation fee", f"{amount(float(found.creation_fee), cur)} {label(cur)}"),
            ("Created", timestamp(float(found.ct))),
            ("Time left", "—" if found.expired else duration(found.time_left(now).total_seconds())),
            ("Image", found.image or "—"),
            ("SSH", _access(found, access["ssh_command"])),
            ("Login", _login_text(found, saved, access)),
            ("HTTP", _access(found, found.http_url)),
        ]
        if access["jupyter_token_remembered"] and found.http_url and not found.expired:
            pairs.append(("Jupyter", f"`clore open {found.id}` opens it logged in (token kept)"))
        if limits is not None or guards:
            from clore.cli._limits import describe, enforcement_text

            cur_or_none = found.currency or None
            shown = (
                "none registered" if limits is None else describe(limits, cur_or_none, note=False)
            )
            pairs.append(("Limits", shown))
            if not found.expired:
                pairs.append(("Guard", enforcement_text(guards, cur_or_none)))
        out.fields(pairs, title=f"Order {found.id}")

    document = {
        "order": record(found, now, spot_active),
        "access": access,
        "limits": None if limits is None else _builtins(limits),
        "enforced": bool(guards),
        "guards": guards,
    }
    out.result(document, human)


def _builtins(value: object) -> Any:
    import msgspec

    return msgspec.to_builtins(value)


def _saved_login(app: AppContext, found: Order) -> RentalLogin | None:
    """What this machine remembers of the order's login (an unreadable file: a warning)."""
    from clore.rentals import LoginsFileError, RentalLogins

    try:
        return RentalLogins().get(found)
    except LoginsFileError as exc:
        app.out.warn(str(exc))
        return None


def _access_doc(found: Order, saved: RentalLogin | None) -> dict[str, Any]:
    """How to connect: the ssh command (with ``-i`` the key remembered), the key file, and
    whether a password and a Jupyter token are remembered (never their values)."""
    from clore.rentals.credentials import login_key

    key = login_key(found) if saved is not None else None
    command = found.ssh_command()
    if command is not None and key is not None:
        command += f" -i {shlex.quote(str(key))}"  # after the destination, as -p is
    return {
        "ssh_command": command,
        "key_file": None if key is None else str(key),
        "password_remembered": bool(saved is not None and saved.password),
        "jupyter_token_remembered": bool(saved is not None and saved.jupyter_token),
    }


def _login_text(found: Order, saved: RentalLogin | None, access: dict[str, Any]) -> str:
    if saved is None:
        return "not rented from here: nothing remembered (ssh tries your default keys)"
    parts = []
    if access["key_file"]:
        parts.append(f"key {access['key_file']}")
    if access["password_remembered"]:
        parts.append("the password chosen at rent (remembered here, not shown)")
    return " and ".join(parts) or "no SSH login remembered"


def _limits_doc(app: AppContext, found: Order) -> tuple[Limits | None, list[dict[str, Any]]]:
    """The limits registered for the order, and the guards enforcing limits on it now."""
    from clore.cli._limits import enforcement
    from clore.workflows import registered_limits

    limits = registered_limits().get(found.id)
    guards = [] if found.expired else enforcement(app, found.id, limits)
    return limits, guards


def wait_for(app: AppContext, order_id: int, timeout: float) -> Order:
    """Wait (``wait_for_order``) until the order is ready; an interrupted or timed-out
    wait says the order is still running and billing, and how to stop or wait again."""
    import time

    from clore.cli._billing import billing_error

    started = time.monotonic()
    try:
        with app.out.waiting(f"waiting for order {order_id} to be ready"):
            found = app.api().wait_for_order(order_id, timeout=timeout)
    except BaseException as exc:
        raise billing_error(exc, order_id) from exc
    app.out.info(f"Order {order_id} is ready after {duration(time.monotonic() - started)}")
    return found


def _access(found: Order, value: str | None) -> str:
    if found.expired:
        return "— (ended)"
    return value or "— (not provisioned yet)"


def _get(app: AppContext, order_id: int) -> Order:
    return app.api().get_order(order_id)
