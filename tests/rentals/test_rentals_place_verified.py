"""``clore.rentals.place_verified`` on the in-process sandbox and its real machines (SSH on
127.0.0.1): a lying cheapest server is cancelled inside the free window with its findings,
put on the bad-host list, and the next candidate is rented and kept; the number of orders
is bounded by ``verify_tries``; ``avoid_bad_hosts`` passes listed hosts over."""

from __future__ import annotations

from pathlib import Path

import pytest

from clore import Clore, Order, Server
from clore.rentals import Candidate, Placed, avoid_bad_hosts, place_verified
from clore.rentals.verify import BadHosts, Credentials, Settlement, VerifyOptions
from clore.sandbox import Sandbox
from clore.sandbox.backend.rules import CREATION_FEE_AFTER
from clore.workflows import RentSpec

PASSWORD = "Verify12345"
CREDS = Credentials(password=PASSWORD)
SPEC = RentSpec(image="ubuntu:22.04", ports={"22": "tcp"}, ssh_password=PASSWORD)
QUICK = VerifyOptions(load_seconds=1, disk_mb=8)


def single_4090s(client: Clore, count: int = 3) -> list[Server]:
    """The ``count`` cheapest available 1x RTX 4090 servers taking bitcoin."""
    found = [
        s
        for s in client.marketplace()
        if not s.rented
        and s.specs.gpu_count == 1
        and "4090" in s.specs.gpu_model
        and s.accepts("bitcoin")
        and s.price_per_day("bitcoin") is not None
    ]
    found.sort(key=lambda s: (s.price_per_day("bitcoin"), s.id))
    return found[:count]


def creation_fee_charged(sandbox: Sandbox, order_id: int) -> float:
    """What the sandbox took from the wallet as the order's creation fee."""
    from clore.sandbox.backend.billing import creation_fee_charged as charged

    record = sandbox.backend.order_record(order_id)
    assert record is not None
    return charged(record)


def recorded_issue(sandbox: Sandbox, order_id: int) -> str | None:
    """The issue text the sandbox stored with the cancelled order."""
    user = sandbox.backend.authenticate(sandbox.demo_key)
    assert user is not None
    views = [v for v in sandbox.backend.my_orders(user, True) if v.order.id == order_id]
    return views[0].order.issue


@pytest.fixture
def client(sandbox: Sandbox) -> Clore:
    return sandbox.client()


def test_a_liar_is_cancelled_in_the_window_and_the_next_server_is_kept(
    sandbox: Sandbox, client: Clore, tmp_path: Path
) -> None:
    """The cheapest server delivers one GPU of another model: its order is cancelled with
    the findings as issue (no creation fee), the host listed; the next one passes, kept."""
    liar, honest, _ = single_4090s(client)
    sandbox.set_server(liar.id, delivers={"gpu": "NVIDIA GeForce RTX 3060"})
    bad = BadHosts(tmp_path / "bad.json")
    placed: list[Placed] = []
    settled: list[tuple[Settlement, Candidate | None]] = []
    result = place_verified(
        client,
        [Candidate(s.id, s) for s in single_4090s(client)],
        SPEC,
        credentials=lambda _o: CREDS,
        wait=lambda o: client.wait_for_order(o.id, timeout=120),
        verify_tries=3,
        bad_hosts=bad,
        options=lambda _o: QUICK,
        on_placed=placed.append,
        on_settled=lambda s, n: settled.append((s, n)),
    )
    assert [p.candidate.server_id for p in placed] == [liar.id, honest.id]
    first, kept = result.settlements
    assert (first.outcome, first.in_window, kept.outcome) == ("cancelled", True, "kept")
    assert settled[0][1] is not None and settled[0][1].server_id == honest.id
    assert settled[1][1] is None
    assert result.order.si == honest.id and result.settlement is kept
    assert first.issue is not None and "gpu_model fail" in first.issue
    assert recorded_issue(sandbox, first.order_id) == first.issue
    lost = next(o for o in client.my_orders(include_completed=True) if o.id == first.order_id)
    sandbox.advance(CREATION_FEE_AFTER + 60)  # long past the free window
    assert lost.expired and creation_fee_charged(sandbox, first.order_id) == 0.0
    assert creation_fee_charged(sandbox, kept.order_id) > 0.0
    found = bad.is_bad(liar.id)
    assert found is not None and found.entry.order_id == first.order_id


def test_no_more_orders_than_verify_tries(sandbox: Sandbox, client: Clore, tmp_path: Path) -> None:
    """Every candidate lies and verify_tries is 2: two orders, both cancelled, no third."""
    servers = single_4090s(client)
    for server in servers:
        sandbox.set_server(server.id, delivers={"gpu_count": 0})
    orders: list[Order] = []
    result = place_verified(
        client,
        [Candidate(s.id, s) for s in servers],
        SPEC,
        credentials=lambda _o: CREDS,
        wait=lambda o: client.wait_for_order(o.id, timeout=120),
        verify_tries=2,
        bad_hosts=BadHosts(tmp_path / "bad.json"),
        options=lambda _o: QUICK,
        on_placed=lambda p: orders.append(p.order),
    )
    assert [o.si for o in orders] == [servers[0].id, servers[1].id]
    assert [s.outcome for s in result.settlements] == ["cancelled", "cancelled"]
    assert client.my_orders() == []


def test_avoid_bad_hosts_passes_over_listed_servers_and_owners(tmp_path: Path) -> None:
    """A listed server, and a server of a listed owner, are passed over with the reason."""
    import msgspec

    def server(server_id: int, owner: int) -> Server:
        return msgspec.convert({"id": server_id, "owner": owner}, Server)

    bad = BadHosts(tmp_path / "bad.json")
    bad.add_server(1, reason="gpu_count: 1 fewer than listed", owner=10)
    bad.add_owner(20, reason="sells laptops")
    candidates = [Candidate(1, server(1, 10)), Candidate(2, server(2, 20)), Candidate(3)]
    kept, passed = avoid_bad_hosts(candidates, bad.load())
    assert [c.server_id for c in kept] == [3]
    assert [(p.server_id, p.reason) for p in passed] == [
        (1, "bad host: gpu_count: 1 fewer than listed"),
        (2, "bad host: owner 20: sells laptops"),
    ]


def test_a_machine_that_refuses_the_login_stops_the_moving_on(
    sandbox: Sandbox, client: Clore, tmp_path: Path
) -> None:
    """Wrong credentials: the first order is cancelled (free) but its host is not listed
    and no other server is rented: the next one would refuse them too."""
    orders: list[Order] = []
    bad = BadHosts(tmp_path / "bad.json")
    result = place_verified(
        client,
        [Candidate(s.id, s) for s in single_4090s(client)],
        SPEC,
        credentials=lambda _o: Credentials(password="WrongPass1"),
        wait=lambda o: client.wait_for_order(o.id, timeout=120),
        verify_tries=3,
        bad_hosts=bad,
        options=lambda _o: QUICK,
        on_placed=lambda p: orders.append(p.order),
    )
    assert len(orders) == 1 and result.settlement.outcome == "cancelled"
    assert not result.settlement.report.reachable
    assert bad.load().servers == () and client.my_orders() == []
