"""``AppContext.api()``: the client with each call shown while it waits, typed as ``Clore``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from clore import Clore
from clore.cli._announce import Announcing
from clore.cli._output import Output
from clore.sandbox import Sandbox


class Recording(Output):
    """An Output that notes what each call waited for, and whether the call ran inside."""

    def __init__(self) -> None:
        super().__init__(False)
        self.labels: list[str] = []
        self.inside = False

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[Any]:
        self.labels.append(message)
        self.inside = True
        try:
            yield None
        finally:
            self.inside = False


def test_each_call_runs_inside_its_label_with_the_first_argument(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """A call's label names its first argument (positional or keyword), and the call
    runs while the label is shown; the result is the client's own."""
    out = Recording()
    api = Announcing(clore_client, out)
    servers = api.marketplace()
    seen: list[bool] = []

    class Spy:
        def spot_marketplace(self, server_id: int) -> Any:
            seen.append(out.inside)
            return clore_client.spot_marketplace(server_id)

    spied = Announcing(Spy(), out)  # type: ignore[arg-type]
    spied.spot_marketplace(servers[0].id)
    api.my_orders(include_completed=True)
    assert out.labels == [
        "fetching the marketplace",
        f"fetching the spot market of server {servers[0].id}",
        "fetching your orders",
    ]
    assert (seen, [s.id for s in servers]) == ([True], [s.id for s in clore_client.marketplace()])


def test_only_the_listed_calls_exist(clore_client: Clore) -> None:
    """A client method that is not an announced call is not there (mypy sees the same)."""
    api = Announcing(clore_client, Recording())
    assert (hasattr(api, "server_time"), callable(api.create_order)) == (False, True)
