"""One async face over either client: the runner's core awaits every API call.

A ``clore.AsyncClore`` is awaited as it is; a ``clore.Clore`` is called in a worker thread
(``asyncio.to_thread``), so its pacing and retries stay its own and the event loop keeps
streaming output and heart-beating meanwhile. The job's steps call one at a time; only
the renter fee may be read beside them (while the command runs), and the client's pacing
is shared by its threads. Each call is short (one
request, or a bounded wait in chunks): nothing the runner abandons keeps a thread busy
for long. ``server_time``/``time_scale`` read the client's estimate (no request).
"""

from __future__ import annotations

import asyncio
import inspect
import math
from typing import Any

from clore._wire import Order, RenterFees, Server, SpotMarket

__all__ = ["Api"]


class Api:
    """The client as the runner calls it (``clore.Clore`` or ``clore.AsyncClore``)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.is_async = inspect.iscoroutinefunction(getattr(client, "my_orders", None))

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.client, name)
        if self.is_async:
            return await method(*args, **kwargs)
        return await asyncio.to_thread(method, *args, **kwargs)

    # ---- time (no request) ------------------------------------------------------------
    def server_time(self) -> float:
        """The API server's unix time, as the client estimates it."""
        return float(self.client.server_time())

    @property
    def time_scale(self) -> float:
        """Server seconds per second of the client's clock (1 for the real API)."""
        value = getattr(self.client, "time_scale", 1.0)
        if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
            return float(value)
        return 1.0

    @property
    def base_url(self) -> str | None:
        value = getattr(self.client, "base_url", None)
        return value if isinstance(value, str) else None

    # ---- calls --------------------------------------------------------------------------
    async def marketplace(self) -> list[Server]:
        result: list[Server] = await self._call("marketplace")
        return result

    async def spot_marketplace(self, server_id: int) -> SpotMarket:
        result: SpotMarket = await self._call("spot_marketplace", server_id)
        return result

    async def my_orders(self, include_completed: bool = False) -> list[Order]:
        result: list[Order] = await self._call("my_orders", include_completed=include_completed)
        return result

    async def find_order(self, order_id: int) -> Order | None:
        """The order as ``my_orders(include_completed=True)`` shows it, or None."""
        orders = await self.my_orders(include_completed=True)
        return next((o for o in orders if o.id == order_id), None)

    async def create_order(self, **arguments: Any) -> Order:
        result: Order = await self._call("create_order", **arguments)
        return result

    async def cancel_order(self, order_id: int, issue: str | None = None) -> None:
        await self._call("cancel_order", order_id, issue)

    async def set_spot_price(self, order_id: int, price: float) -> None:
        await self._call("set_spot_price", order_id, price)

    async def wait_for_order(self, order_id: int, timeout: float) -> Order:
        result: Order = await self._call("wait_for_order", order_id, timeout=timeout)
        return result

    async def renter_fees(self) -> RenterFees:
        result: RenterFees = await self._call("renter_fees")
        return result
