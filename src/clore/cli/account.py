"""``clore wallets``, ``clore fees`` and ``clore spend`` (per order, burn rate, runway)."""

from __future__ import annotations

from typing import Any

import click

from clore.cli._context import AppContext, pass_app
from clore.cli._format import duration, money, order_state
from clore.cli._output import Column, json_option, listing_options

__all__ = ["fees", "spend", "wallets"]


def _amount(value: float | None, currency: str) -> str:
    return money(None if value is None else float(value), currency)


@click.command()
@listing_options("wallet", "balance", "deposit_address", "withdrawal_fee")
@json_option
@pass_app
def wallets(app: AppContext) -> None:
    """Show your wallets: balance, deposit address and withdrawal fee."""
    found = app.api().wallets()
    rows = [
        [
            w.name,
            _amount(None if w.balance is None else float(w.balance), w.name),
            w.deposit or "—",
            _amount(None if w.withdrawal_fee is None else float(w.withdrawal_fee), w.name),
        ]
        for w in found
    ]
    columns = [
        Column("Wallet", "left", 99),
        Column("Balance", "right", 98),
        Column("Deposit address", "left", 50),
        Column("Withdrawal fee", "right", 60),
    ]
    app.out.result({"wallets": found}, lambda: app.out.table(columns, rows))


@click.command()
@json_option
@pass_app
def fees(app: AppContext) -> None:
    """Show the renter fees (percent of the price) and one-off creation fees."""
    table = app.api().renter_fees()
    rows: list[list[str]] = []
    for kind in ("on_demand", "spot"):
        percents = table.renter_fees.get(kind, {}).get("base", {})
        creation = table.creation_fees.get(kind, {})
        for currency in sorted(set(percents) | set(creation)):
            rows.append(
                [
                    kind.replace("_", "-"),
                    currency,
                    f"{float(percents.get(currency, 0)):g}%",
                    _amount(float(creation.get(currency, 0)), currency),
                ]
            )
    columns = [Column("Order type"), Column("Currency"), Column("Renter fee", "right")]
    columns.append(Column("Creation fee", "right"))
    document = {"renter_fees": table.renter_fees, "creation_fees": table.creation_fees}
    app.out.result(document, lambda: app.out.table(columns, rows))


@click.command()
@json_option
@pass_app
def spend(app: AppContext) -> None:
    """Spend per order and in total, burn rate per day, and each wallet's runway.

    The burn rate adds what every running order takes from its wallet per day: its price
    plus the renter fee (spot bids only while they win); runway is a wallet's balance
    divided by the burn in its currency.
    """
    from clore.cli._orders import collect
    from clore.workflows import burn_per_day

    found, active = collect(app, include_completed=True)
    balances = app.api().wallets()
    fees = app.api().renter_fees() if any(not o.expired for o in found) else None
    now = app.server_time()
    totals: dict[str, float] = {}
    burn: dict[str, float] = {}
    per_order: list[dict[str, Any]] = []
    for order in found:
        cur = order.currency or "bitcoin"
        state = order_state(order, now, active.get(order.id))
        running = not order.expired and state != "outbid"
        rate = burn_per_day(order, fees) if running else 0.0
        totals[cur] = totals.get(cur, 0.0) + float(order.spend)
        if running:
            burn[cur] = burn.get(cur, 0.0) + rate
        per_order.append(
            {
                "id": order.id,
                "si": order.si,
                "spot": order.spot,
                "currency": cur,
                "price": float(order.price),
                "spend": float(order.spend),
                "creation_fee": float(order.creation_fee),
                "state": state,
                "running": running,
                "burn_per_day": rate,
            }
        )
    wallet_rows: list[dict[str, Any]] = []
    for wallet in balances:
        rate = burn.get(wallet.name, 0.0)
        balance = None if wallet.balance is None else float(wallet.balance)
        runway = None if balance is None or rate <= 0 else balance / rate * 86400
        wallet_rows.append(
            {
                "name": wallet.name,
                "balance": balance,
                "burn_per_day": rate,
                "runway_seconds": runway,
            }
        )
    document = {
        "orders": per_order,
        "totals": totals,
        "burn_per_day": burn,
        "wallets": wallet_rows,
    }

    def human() -> None:
        out = app.out
        if per_order:
            rows = [
                [
                    str(o["id"]),
                    str(o["si"]),
                    "spot" if o["spot"] else "on-demand",
                    o["state"],
                    money(o["price"], o["currency"], "day"),
                    _amount(o["spend"], o["currency"]),
                ]
                for o in per_order
            ]
            columns = [Column("Order", "right"), Column("Server", "right"), Column("Type")]
            columns += [Column("State"), Column("Price", "right"), Column("Spend", "right")]
            out.table(columns, rows)
        else:
            out.echo("No orders.")
        out.echo()
        for cur, total in sorted(totals.items()):
            rate = money(burn.get(cur, 0.0), cur, "day")
            out.echo(f"Total spent: {_amount(total, cur)}; burn rate {rate} (prices + renter fees)")
        for row in wallet_rows:
            runway = row["runway_seconds"]
            left = "no running orders" if runway is None else f"runway {duration(runway)}"
            out.echo(f"Wallet {row['name']}: {_amount(row['balance'], row['name'])} ({left})")

    app.out.result(document, human)
