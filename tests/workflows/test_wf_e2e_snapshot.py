"""The watcher on the full 3,500-server snapshot, through the public ``clore.testing`` fixtures."""

from __future__ import annotations

from typing import Any

import pytest
from wf_sandbox import ScriptedClock, run_until

from clore.testing import clore_client, sandbox, sandbox_factory  # noqa: F401 - fixtures
from clore.workflows import RentSpec, Watcher


@pytest.fixture
def sandbox_clock() -> ScriptedClock:
    """The shared clock, scriptable so a price drop happens at a chosen simulated moment."""
    return ScriptedClock()


def single_4090(server: Any) -> bool:
    return bool(server.gpu_model.endswith("RTX 4090") and server.gpu_count == 1)


def test_the_cheapest_4090_after_a_drop_is_rented_on_the_real_market(
    sandbox: Any,  # noqa: F811 - the clore.testing fixture
    clore_client: Any,  # noqa: F811 - the clore.testing fixture
    sandbox_clock: ScriptedClock,
) -> None:
    """Among 119 available single 4090s, the one dropping under the cap is rented, once."""
    cap = 0.000045  # just under the cheapest single 4090 of the snapshot (0.00005 BTC/day)
    drop = {"on_demand": {"bitcoin": 0.00004}}
    sandbox_clock.after(35, lambda: sandbox.set_server(18811, price=drop))
    rent = RentSpec(image="cloreai/ubuntu22.04-jupyter", ssh_password="abc123")
    watcher = Watcher(clore_client, sandbox_clock, match=single_4090, max_price=cap, rent=rent)
    events = run_until(watcher.run(), "done")
    assert [(o.si, float(o.price)) for o in clore_client.my_orders()] == [(18811, 0.00004)]
    assert [e.kind for e in events] == ["match", "renting", "rented", "done"]
