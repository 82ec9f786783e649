"""The client as the commands use it: every call shown while it waits (``Output.waiting``).

The SDK may wait inside any call (pacing: 1 s between requests, 5 s between orders;
retries after a rate limit; ``wait_for_order`` polling), so each call says what it is
doing. ``Announcing`` has exactly the calls listed here, each typed as ``clore.Clore``'s
own method (``_Shown`` keeps its signature), so mypy checks every call made through it;
the wrapped client's method is looked up when called (tests inject their own clients).
Imported only when a command runs: it loads the SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from clore import Clore
from clore.cli._output import Output

__all__ = ["Announcing"]

P = ParamSpec("P")
R = TypeVar("R")


class _Shown(Generic[P, R]):
    """A method of ``Announcing``: ``Clore``'s method of the same name, run inside
    ``Output.waiting(label)`` (``{0}`` in the label is the call's first argument)."""

    def __init__(self, label: str, method: Callable[Concatenate[Clore, P], R]) -> None:
        self.label = label
        self.name = method.__name__

    @overload
    def __get__(self, obj: None, owner: type[Announcing]) -> _Shown[P, R]: ...

    @overload
    def __get__(self, obj: Announcing, owner: type[Announcing]) -> Callable[P, R]: ...

    def __get__(
        self, obj: Announcing | None, owner: type[Announcing]
    ) -> _Shown[P, R] | Callable[P, R]:
        if obj is None:
            return self
        method: Callable[P, R] = getattr(obj.client, self.name)
        out, label = obj.out, self.label

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            first: Any = args[0] if args else next(iter(kwargs.values()), "")
            with out.waiting(label.format(first)):
                return method(*args, **kwargs)

        return call


class Announcing:
    """``client`` with each call shown on ``out`` while it runs."""

    def __init__(self, client: Clore, out: Output) -> None:
        self.client = client
        self.out = out

    marketplace = _Shown("fetching the marketplace", Clore.marketplace)
    spot_marketplace = _Shown("fetching the spot market of server {0}", Clore.spot_marketplace)
    my_orders = _Shown("fetching your orders", Clore.my_orders)
    get_order = _Shown("looking up order {0}", Clore.get_order)
    create_order = _Shown("creating the order on server {0}", Clore.create_order)
    cancel_order = _Shown("cancelling order {0}", Clore.cancel_order)
    set_spot_price = _Shown("setting the bid of order {0}", Clore.set_spot_price)
    wallets = _Shown("fetching your wallets", Clore.wallets)
    renter_fees = _Shown("fetching the fees", Clore.renter_fees)
    my_servers = _Shown("fetching your hosted servers", Clore.my_servers)
    server_config = _Shown("fetching the configuration of {0}", Clore.server_config)
    set_server_settings = _Shown("updating server {0}", Clore.set_server_settings)
    wait_for_order = _Shown("waiting for order {0} to be ready", Clore.wait_for_order)
