"""``clore hosts bad``: the hosts you rent from that verification found lying (the local
bad-host list of ``clore.rentals.verify``), listed and forgotten.

Not ``clore host``, which configures the servers *you* host. ``rent --cheapest`` passes
listed servers over, and the servers of a listed owner (or of an owner with two servers
listed); ``rent ID`` warns and rents as asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from clore.cli._context import EXIT_NOT_FOUND, EXIT_USAGE, AppContext, CliError, pass_app
from clore.cli._format import timestamp
from clore.cli._group import Group
from clore.cli._output import Column, json_option, listing_options
from clore.cli._params import Id

if TYPE_CHECKING:
    from clore.rentals.verify import BadHost, BadHostList

__all__ = ["hosts"]

COLUMNS = [
    Column("Kind", "left", 90, "kind"),
    Column("ID", "right", 99, "id"),
    Column("Owner", "right", 50, "owner"),
    Column("Order", "right", 40, "order"),
    Column("Added", "left", 30, "added"),
    Column("Checks", "left", 60, "checks"),
    Column("Reason", "left", 80, "reason"),
]


@click.group(cls=Group)
def hosts() -> None:
    """The hosts you rent from: the bad-host list that verification keeps (`clore host` is
    for the servers you host)."""


def _entry(kind: str, entry: BadHost) -> dict[str, Any]:
    import msgspec

    return {"kind": kind, **msgspec.to_builtins(entry)}


def _document(found: BadHostList, path: str, removed: list[dict[str, Any]] | None) -> Any:
    doc: dict[str, Any] = {
        "path": path,
        "servers": [_entry("server", e) for e in found.servers],
        "owners": [_entry("owner", e) for e in found.owners],
    }
    if removed is not None:
        doc["removed"] = removed
    return doc


def _rows(found: BadHostList) -> list[list[str]]:
    return [
        [
            kind,
            str(entry.id),
            "—" if entry.owner is None else str(entry.owner),
            "—" if entry.order_id is None else str(entry.order_id),
            timestamp(entry.added_at),
            ",".join(entry.checks) or "—",
            entry.reason,
        ]
        for kind, entry in found.entries()
    ]


@hosts.command("bad")
@click.option(
    "--forget", "forget_server", type=Id(), metavar="SERVER_ID", help="Take a server off."
)
@click.option(
    "--forget-owner",
    type=Id(),
    metavar="OWNER_ID",
    help="Take an owner off, with every server of theirs.",
)
@click.option("--clear", is_flag=True, help="Empty the list.")
@listing_options(*(c.key for c in COLUMNS))
@json_option
@pass_app
def bad(app: AppContext, forget_server: int | None, forget_owner: int | None, clear: bool) -> None:
    """List the servers and owners verification put on the bad-host list, or forget them.

    A failed `rent --verify` (or `verify --cancel-if-bad`) inside the free window adds the
    server, with its owner; `rent --cheapest` then skips it, and skips every server of an
    owner with two servers listed.
    """
    from clore.rentals.verify import BadHosts

    chosen = sum(x is not None and x is not False for x in (forget_server, forget_owner, clear))
    if chosen > 1:
        raise CliError("give one of --forget, --forget-owner, --clear", EXIT_USAGE)
    store = BadHosts()
    removed: list[dict[str, Any]] | None = None
    if chosen:
        gone = store.forget(server_id=forget_server, owner=forget_owner, everything=clear)
        if not gone and not clear:
            what = (
                f"server {forget_server}"
                if forget_server is not None
                else (f"owner {forget_owner}")
            )
            raise CliError(f"{what} is not on the bad-host list", EXIT_NOT_FOUND)
        removed = [{"id": e.id, "owner": e.owner, "reason": e.reason} for e in gone]
        app.out.info(f"forgot {len(gone)} entr{'y' if len(gone) == 1 else 'ies'}")
    found = store.load()

    def human() -> None:
        if chosen:
            return
        rows = _rows(found)
        app.out.table(
            COLUMNS, rows, ids=[row[1] for row in rows], empty="The bad-host list is empty."
        )

    app.out.result(_document(found, str(store.path), removed), human)
