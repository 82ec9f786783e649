"""What an order may cost and what the person's caps allow: ``Cost``, ``check_caps``.

**Cost of an order** (``Cost``): its price per day (the on-demand price, or the spot bid)
over its maximum time (the person's ``order_max_time``, or less when asked, never more
than the server's maximum rental), plus the renter fee (a percentage of the price,
``renter_fees``) and the creation fee; in its currency and in USD at the market's rate
(``spot_marketplace``'s ``currency_rates_in_usd``).

**The caps** (``check_caps``; each refusal names the cap, the figures and what is left):
the listed price per hour in USD; the cost of the order (``max_spend_per_order_usd``: the
quote says how many hours the cap allows at this price); the committed cost of the
agent's orders of the last 24 hours plus this one (``max_spend_per_day_usd``; the ledger's
``Usage``); the agent's live orders (``max_live_orders``); the exact GPU model
(``allowed_gpus``, matched as the ``gpu=`` filter matches). A USD cap that cannot be
checked (no USD rate for the currency) refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clore.agent.spec import ToolError
from clore.agent.views import gpu_text, num, sig

if TYPE_CHECKING:
    from clore import Server
    from clore.agent.ledger import Usage
    from clore.agent.policy import AgentPolicy

__all__ = ["Cost", "check_caps", "gpu_allowed", "refuse", "usd_rate"]


# --------------------------------------------------------------------------- cost


@dataclass(frozen=True)
class Cost:
    """What one order costs at most (see the module docstring)."""

    currency: str
    spot: bool
    price_per_day: float
    usd_rate: float | None
    fee_percent: float
    creation_fee: float
    seconds: float

    @property
    def price_per_hour(self) -> float:
        return self.price_per_day / 24.0

    def usd(self, amount: float | None) -> float | None:
        return None if amount is None or self.usd_rate is None else amount * self.usd_rate

    @property
    def price_per_hour_usd(self) -> float | None:
        return self.usd(self.price_per_hour)

    @property
    def burn_per_hour(self) -> float:
        """Price plus renter fee, per hour."""
        return self.price_per_hour * (1.0 + self.fee_percent / 100.0)

    @property
    def max_cost(self) -> float:
        return self.burn_per_hour * self.seconds / 3600.0 + self.creation_fee

    @property
    def max_cost_usd(self) -> float | None:
        return self.usd(self.max_cost)

    def hours_within(self, budget_usd: float) -> float | None:
        """The longest running time whose cost fits ``budget_usd`` (None: no rate)."""
        if self.usd_rate is None:
            return None
        left = budget_usd / self.usd_rate - self.creation_fee
        if left <= 0:
            return 0.0
        return left / self.burn_per_hour if self.burn_per_hour > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        from clore.market import label

        return {
            "currency": label(self.currency),
            "price_per_hour": sig(self.price_per_hour),
            "price_per_day": sig(self.price_per_day),
            "usd_per_hour": sig(self.price_per_hour_usd),
            "usd_per_day": sig(self.usd(self.price_per_day)),
            "renter_fee_percent": self.fee_percent,
            "creation_fee": sig(self.creation_fee),
            "creation_fee_usd": sig(self.usd(self.creation_fee)),
            "max_hours": sig(self.seconds / 3600.0),
            "max_cost": sig(self.max_cost),
            "max_cost_usd": sig(self.max_cost_usd),
        }


def usd_rate(currency: str, rates: dict[str, float] | None) -> float | None:
    from clore.market import USD

    if currency == USD:
        return 1.0
    value = (rates or {}).get(currency)
    return float(value) if value else None


# --------------------------------------------------------------------------- caps


def gpu_allowed(policy: AgentPolicy, server: Server) -> bool:
    from clore.market import PriceContext, parse_filter

    if policy.allowed_gpus is None:
        return True
    ctx = PriceContext()
    # The gpu= filter's own matching: exact models (4090 is not the 4090 D).
    return any(parse_filter(f"gpu={model}")(server, ctx) for model in policy.allowed_gpus)


def check_caps(
    policy: AgentPolicy, server: Server, cost: Cost, usage: Usage
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The refusals (each a dict naming its ``cap``) and what every cap allows now."""
    refusals: list[dict[str, Any]] = []
    caps: dict[str, Any] = {}
    needs_usd = any(
        v is not None
        for v in (
            policy.max_price_per_hour_usd,
            policy.max_spend_per_order_usd,
            policy.max_spend_per_day_usd,
        )
    )
    if needs_usd and cost.usd_rate is None:
        refusals.append(
            {
                "cap": "usd_rate",
                "message": "the USD caps cannot be checked: no USD rate for this currency "
                "now; try again in a minute, or pay in usd",
            }
        )
    if policy.allowed_gpus is not None:
        ok = gpu_allowed(policy, server)
        caps["allowed_gpus"] = {"allowed": list(policy.allowed_gpus), "ok": ok}
        if not ok:
            refusals.append(
                {
                    "cap": "allowed_gpus",
                    "message": f"GPU {gpu_text(server)} is not among the allowed models "
                    f"({', '.join(policy.allowed_gpus)})",
                    "gpu": gpu_text(server),
                    "allowed": list(policy.allowed_gpus),
                }
            )
    hourly = cost.price_per_hour_usd
    if policy.max_price_per_hour_usd is not None:
        limit = policy.max_price_per_hour_usd
        ok = hourly is not None and hourly <= limit * (1 + 1e-9)
        caps["max_price_per_hour_usd"] = {"limit": limit, "value": sig(hourly), "ok": ok}
        if hourly is not None and not ok:
            refusals.append(
                {
                    "cap": "max_price_per_hour_usd",
                    "message": f"{num(hourly)} USD/h is over the cap of {num(limit)} USD/h",
                    "limit": limit,
                    "value": sig(hourly),
                }
            )
    total = cost.max_cost_usd
    if policy.max_spend_per_order_usd is not None:
        limit = policy.max_spend_per_order_usd
        allows = cost.hours_within(limit)
        ok = total is not None and total <= limit * (1 + 1e-9)
        caps["max_spend_per_order_usd"] = {
            "limit": limit,
            "value": sig(total),
            "allows_hours": sig(allows),
            "ok": ok,
        }
        if total is not None and not ok:
            refusals.append(
                {
                    "cap": "max_spend_per_order_usd",
                    "message": f"this order may cost {num(total)} USD, over the per-order cap "
                    f"of {num(limit)} USD; at this price the cap allows "
                    f"{num(allows)} h (set max_hours to at most that)",
                    "limit": limit,
                    "value": sig(total),
                    "allows_hours": sig(allows),
                }
            )
    if policy.max_spend_per_day_usd is not None:
        limit = policy.max_spend_per_day_usd
        remaining = max(0.0, limit - usage.used_usd)
        ok = total is not None and total <= remaining * (1 + 1e-9) + 1e-12
        caps["max_spend_per_day_usd"] = {
            "limit": limit,
            "used": sig(usage.used_usd),
            "remaining": sig(remaining),
            "allows_hours": sig(cost.hours_within(remaining)),
            "ok": ok,
        }
        if total is not None and not ok:
            refusals.append(
                {
                    "cap": "max_spend_per_day_usd",
                    "message": f"this order may cost {num(total)} USD but only "
                    f"{num(remaining)} USD of the {num(limit)} USD daily cap is left "
                    f"({num(usage.used_usd)} USD committed in the last 24 h); that allows "
                    f"{num(cost.hours_within(remaining))} h at this price",
                    "limit": limit,
                    "used": sig(usage.used_usd),
                    "remaining": sig(remaining),
                    "value": sig(total),
                }
            )
    if policy.max_live_orders is not None:
        limit = policy.max_live_orders
        ok = usage.live < limit
        caps["max_live_orders"] = {"limit": limit, "live": usage.live, "ok": ok}
        if not ok:
            refusals.append(
                {
                    "cap": "max_live_orders",
                    "message": f"the agent has {usage.live} live order(s), the cap is {limit}: "
                    "cancel one first (list_orders)",
                    "limit": limit,
                    "live": usage.live,
                }
            )
    return refusals, caps


def refuse(refusals: list[dict[str, Any]], caps: dict[str, Any]) -> ToolError:
    """The ``refused`` error for ``refusals``."""
    text = "refused: " + "; ".join(f"{r['cap']}: {r['message']}" for r in refusals)
    return ToolError(text, error="refused", refused=refusals, caps=caps)
