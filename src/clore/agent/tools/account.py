"""The account tools: ``wallets`` (balances) and ``spend`` (what the agent's orders of
the last 24 hours count against the person's caps, and what they have cost). Read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from clore.agent.renting import refresh_usage
from clore.agent.spec import ToolResult, ToolSpec, schema_of, typed
from clore.agent.views import num, sig

if TYPE_CHECKING:
    from clore.agent.context import AgentContext

__all__ = ["TOOLS"]


class NoArgs(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


def wallets(ctx: AgentContext, _args: NoArgs) -> ToolResult:
    """The account's wallets and balances."""
    from clore.market import label

    found = ctx.client.wallets()
    rates = ctx.rates()[0]
    rows: list[dict[str, Any]] = []
    for wallet in found:
        balance = None if wallet.balance is None else float(wallet.balance)
        rate = 1.0 if wallet.name == "USD-Blockchain" else (rates or {}).get(wallet.name)
        rows.append(
            {
                "currency": label(wallet.name),
                "balance": sig(balance, 6),
                "balance_usd": sig(None if balance is None or rate is None else balance * rate),
            }
        )
    text = "; ".join(
        f"{r['currency']}: {num(r['balance'], 6)} ({num(r['balance_usd'])} USD)" for r in rows
    )
    return ToolResult(data={"wallets": rows}, text=f"wallets: {text or 'none'}")


def spend(ctx: AgentContext, _args: NoArgs) -> ToolResult:
    """The agent's spend of the last 24 hours against the caps."""
    from clore.market import label

    usage, _orders = refresh_usage(ctx)
    policy = ctx.policy
    lines_out: list[dict[str, Any]] = []
    for line in usage.lines:
        entry = line.entry
        lines_out.append(
            {
                "order_id": entry.order_id,
                "server_id": entry.rental.server_id,
                "status": "ended"
                if entry.ended
                else ("unsettled" if entry.status != "rented" else "running"),
                "currency": label(entry.rental.currency),
                "price_per_hour": sig(entry.rental.price / 24),
                "spend": sig(entry.spend),
                "cost_so_far": sig(entry.actual_cost()),
                "max_cost": sig(entry.max_cost),
                "counted_usd": sig(line.counted_usd),
            }
        )
    daily = policy.max_spend_per_day_usd
    data: dict[str, Any] = {
        "window_hours": 24,
        "counted_usd": sig(usage.used_usd),
        "max_spend_per_day_usd": daily,
        "remaining_usd": None if daily is None else sig(max(0.0, daily - usage.used_usd)),
        "live_orders": usage.live,
        "max_live_orders": policy.max_live_orders,
        "max_spend_per_order_usd": policy.max_spend_per_order_usd,
        "orders": lines_out,
        "rule": "a running order counts the most it can cost (price x max time + fees); an "
        "ended one what it cost",
    }
    head = f"the agent's orders of the last 24 h count {num(usage.used_usd)} USD"
    if daily is not None:
        head += f" of the {num(daily)} USD daily cap ({num(data['remaining_usd'])} left)"
    head += f"; live orders {usage.live}" + (
        f" of at most {policy.max_live_orders}" if policy.max_live_orders is not None else ""
    )
    rows = [
        f"order {o['order_id'] or '(unsettled)'} on server {o['server_id']}: {o['status']}, "
        f"cost so far {num(o['cost_so_far'])} {o['currency']}, counted {num(o['counted_usd'])} USD"
        for o in lines_out
    ]
    if usage.unpriced:
        rows.append(f"{usage.unpriced} order(s) without a USD rate are not in the total")
    return ToolResult(data=data, text="\n".join([head, *rows]))


TOOLS: Final = [
    ToolSpec(
        name="wallets",
        title="Wallet balances",
        description=(
            "Show the account's wallets: the balance in each currency (BTC, CLORE, USD) and its "
            "value in USD at the market's rates. An order is paid from the wallet of its "
            "currency, so check it before renting in that currency."
        ),
        input_schema=schema_of(NoArgs),
        read_only=True,
        destructive=False,
        idempotent=True,
        mutating=False,
        handler=typed(NoArgs, wallets),
        arguments=NoArgs,
    ),
    ToolSpec(
        name="spend",
        title="Spend against the caps",
        description=(
            "Show what the orders this agent created in the last 24 hours count against the "
            "person's daily cap (a running order counts the most it can cost, an ended one what "
            "it cost), what is left of the cap, the live orders against their cap, and per order "
            "its cost so far."
        ),
        input_schema=schema_of(NoArgs),
        read_only=True,
        destructive=False,
        idempotent=True,
        mutating=False,
        handler=typed(NoArgs, spend),
        arguments=NoArgs,
    ),
]
