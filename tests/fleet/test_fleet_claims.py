"""create_order's claim on its server in a fleet's Redis: the fleet's create_orders on one
server run one at a time, from the snapshot of my_orders to the end of the reconciliation,
so an answer lost on one machine is never settled with another machine's order.

The claim itself (a fenced lease, renewed while held), create_order waiting for it and
failing closed in process; then machines as processes (their own cache, data and home)
against a sandbox server with its rate limiter on: two renting one server at once with an
answer lost, a claim holder killed, a holder back after its lease."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fleet_support import CountingSandbox, Lines, Machine, free_port, wait_until

from clore import Clore, OrderUnconfirmedError, Pacing
from clore._pacing import Busy
from clore._pacing_redis import RedisPacer, claim_keys
from clore._redis import Lease, key_digest
from clore.fleet import FleetStoreError, LeaseLostError
from clore.sandbox import BASE_URL, Sandbox

KEY = "fleet-claim-key-0123456789abcdef"
IMAGE = "cloreai/ubuntu22.04-jupyter"


def _pacer(url: str, lease: float = 10.0) -> RedisPacer:
    pacer = RedisPacer(Pacing(), url, KEY)
    pacer.claim_lease = lease
    return pacer


def _held(got: object) -> Lease:
    assert isinstance(got, Lease), got
    return got


# --------------------------------------------------------------------------- the claim


def test_a_claim_is_one_holder_s_until_released(redis_url: str) -> None:
    """A second claimant is told who holds the server and for how long; after the release
    it gets the claim, with the next fence. Keys are named by the key's hash."""
    a, b = _pacer(redis_url), _pacer(redis_url)
    first = _held(a.claim("server-5"))
    busy = b.claim("server-5")
    assert isinstance(busy, Busy)
    assert 9.0 < busy.left <= 10.0
    assert str(first.token).startswith(busy.holder + ":")
    assert busy.holder.count("/") == 2  # host/pid/random: who, for the error message
    fence = first.fence
    first.release()
    second = _held(b.claim("server-5"))
    assert fence is not None and second.fence == fence + 1
    key = claim_keys(key_digest(KEY), "server-5")[0]
    assert KEY not in key
    assert redis.Redis.from_url(redis_url).get(key) == str(second.token).encode()
    second.release()
    assert redis.Redis.from_url(redis_url).exists(key) == 0


def test_a_held_claim_outlives_its_lease_while_its_holder_runs(redis_url: str) -> None:
    """This process renews what it holds: three leases later the claim is still its own."""
    claim = _held(_pacer(redis_url, lease=0.4).claim("server-6"))
    time.sleep(1.2)
    claim.check()
    assert redis.Redis.from_url(redis_url).pttl(claim.key) > 0
    claim.release()


@pytest.mark.parametrize("how", ["lapsed", "taken by the next holder", "fence moved on"])
def test_a_claim_that_is_no_longer_the_holder_s_is_refused_on_check(
    redis_url: str, how: str
) -> None:
    """Its lease ended (the key expired), another holder took it after that, or Redis's
    fence moved past it: check() raises LeaseLostError, and its release leaves the
    other's claim alone."""
    server = redis.Redis.from_url(redis_url)
    stale = _held(_pacer(redis_url).claim("server-7"))
    server.delete(stale.key)  # what PX does when the lease ends
    other: Lease | None = None
    if how == "taken by the next holder":
        other = _held(_pacer(redis_url).claim("server-7"))
    elif how == "fence moved on":
        server.set(stale.key, str(stale.token), px=10_000)
        server.incr(stale.fence_key)
    with pytest.raises(LeaseLostError, match=r"claim on server 7 at redis://127\.0\.0\.1:\d+/0"):
        stale.check()
    stale.release()
    if other is not None:
        assert server.get(other.key) == str(other.token).encode()
        other.check()
        other.release()


def test_claims_of_other_servers_and_keys_are_apart(redis_url: str) -> None:
    """A claim covers one server of one API key."""
    held = _held(_pacer(redis_url).claim("server-8"))
    _held(_pacer(redis_url).claim("server-9")).release()
    _held(RedisPacer(Pacing(), redis_url, "another-key-0123456789").claim("server-8")).release()
    held.release()


# --------------------------------------------------------------------------- create_order


class _Before(httpx.BaseTransport):
    """The sandbox's transport, running ``action`` before the first create_order is handled."""

    def __init__(self, inner: httpx.BaseTransport, action: Callable[[], None]) -> None:
        self.inner = inner
        self.action: Callable[[], None] | None = action

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/create_order") and self.action is not None:
            action, self.action = self.action, None
            action()
        return self.inner.handle_request(request)


def _orders_on(sandbox: Sandbox, sid: int) -> list[int]:
    with sandbox.client(pacing=Pacing.disabled()) as look:
        return [o.id for o in look.my_orders(include_completed=True) if o.si == sid]


def _free_server(client: Clore) -> int:
    servers = [s for s in client.marketplace() if not s.rented and s.price_per_day() is not None]
    return min(servers, key=lambda s: (s.price_per_day(), s.id)).id


@pytest.fixture
def quick_sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """An in-process sandbox without its limiter: clients pace on the real clock here."""
    return sandbox_factory(db=":memory:", seed="snapshot", rate_limit=False)


def test_create_order_goes_on_once_another_s_claim_ends(
    quick_sandbox: Sandbox, redis_url: str
) -> None:
    """A server claimed by another create_order of the fleet: nothing is sent until the
    claim ends (here its holder dies and its 0.8 s lease lapses); then the order is made."""
    fast = Pacing(min_interval=0.0, create_interval=0.0, url=redis_url)
    with Clore(quick_sandbox.demo_key, base_url=BASE_URL, transport=quick_sandbox.transport(),
               pacing=fast, timeout=5) as client:  # fmt: skip
        sid = _free_server(client)
        key = claim_keys(key_digest(quick_sandbox.demo_key), f"server-{sid}")[0]
        redis.Redis.from_url(redis_url).set(key, "host-b/77/deadbeef:1", px=800)
        started = time.monotonic()
        order = client.create_order(sid, IMAGE)
        waited = time.monotonic() - started
    assert waited >= 0.7
    assert _orders_on(quick_sandbox, sid) == [order.id]
    assert redis.Redis.from_url(redis_url).exists(key) == 0  # released at the end


def test_an_order_found_after_the_claim_passed_to_another_is_not_claimed(
    sandbox: Sandbox, redis_url: str
) -> None:
    """The answer is lost and, meanwhile, the claim lapses and another machine takes it: the
    new order on the server may be that machine's, so it is 'may exist', not returned."""
    taken: list[Lease] = []

    def lapse_and_take() -> None:
        redis.Redis.from_url(redis_url).delete(claim_keys(key_digest(sandbox.demo_key), name)[0])
        other = RedisPacer(Pacing(), redis_url, sandbox.demo_key)
        taken.append(_held(other.claim(name)))

    sandbox.inject_fault("create_order", "drop_after_commit")
    transport = _Before(sandbox.transport(), lapse_and_take)
    with Clore(sandbox.demo_key, base_url=BASE_URL, transport=transport, clock=sandbox.clock,
               pacing=Pacing(url=redis_url)) as client:  # fmt: skip
        sid = _free_server(client)
        name = f"server-{sid}"
        with pytest.raises(OrderUnconfirmedError, match="may exist") as info:
            client.create_order(sid, IMAGE)
    (order,) = _orders_on(sandbox, sid)
    assert f"order {order} appeared on it, but the claim on server {sid}" in str(info.value)
    assert isinstance(info.value.__cause__, LeaseLostError)
    taken[0].check()  # the next holder's claim stands
    taken[0].release()


def test_an_unreachable_redis_refuses_create_order_before_anything_is_sent(
    sandbox: Sandbox,
) -> None:
    """No Redis: FleetStoreError, one line naming the Redis without its password; no order."""
    url = f"redis://ops:claim-s3cret@127.0.0.1:{free_port()}/0"
    with sandbox.client(pacing=Pacing(url=url)) as client, pytest.raises(FleetStoreError) as info:
        client.create_order(1, IMAGE)
    message = str(info.value)
    assert message.startswith(f"fleet store redis://127.0.0.1:{url.rsplit(':', 1)[1]}")
    assert "unreachable while taking the claim on server 1 (nothing was sent)" in message
    assert "\n" not in message and "s3cret" not in message
    assert _orders_on(sandbox, 1) == []


# --------------------------------------------------------------------------- machines


@pytest.fixture
def counting(tmp_path: Path) -> Iterator[CountingSandbox]:
    server = CountingSandbox(tmp_path / "sandbox").start()
    yield server
    server.stop()


def _env(sandbox: CountingSandbox, url: str) -> dict[str, str]:
    return {"CLORE_API_KEY": sandbox.demo_key, "CLORE_BASE_URL": sandbox.base,
            "CLORE_PACING_URL": url}  # fmt: skip


def _fleet_server(sandbox: CountingSandbox, url: str) -> int:
    """The cheapest free server, chosen by a client of the fleet (paced with the others)."""
    with Clore(sandbox.demo_key, base_url=sandbox.base, pacing=Pacing(url=url)) as client:
        return _free_server(client)


def _renter(machine: Machine, env: dict[str, str], sid: int, go: Path, **kw: str) -> Lines:
    timeout, lease = kw.get("timeout", "3"), kw.get("lease", "10")
    lines = Lines(machine.start("rent", str(sid), timeout, lease, str(go), **env))
    lines.wait_for("ready", 30)
    return lines


def _outcome(lines: Lines, timeout: float) -> dict[str, Any]:
    return next(i for i in lines.finish(timeout) if i["kind"] in ("order", "error"))


def _orders_after_quiet(sandbox: CountingSandbox) -> list[dict[str, Any]]:
    time.sleep(1.2)  # the machines are done: one more request of the key must not collide
    return sandbox.orders()


@pytest.mark.slow
@pytest.mark.parametrize(
    "faults",
    [("timeout",), ("timeout", "drop_after_commit"), ("drop_after_commit",), ("late_commit",)],
)
def test_two_machines_renting_one_server_at_once_with_an_answer_lost_make_one_order(
    counting: CountingSandbox, redis_url: str, tmp_path: Path, faults: tuple[str, ...]
) -> None:
    """Two machines create_order on one server at the same moment; the first send's answer
    is lost (and, with two faults, the resend's too). One order exists; the machine that
    made it reports it, the other is refused with server-already-rented, never handed the
    other's order as its own."""
    env = _env(counting, redis_url)
    sid = _fleet_server(counting, redis_url)
    for fault in faults:
        counting.control("POST", "faults", endpoint="create_order", fault=fault)
    go = tmp_path / "go"
    machines = [_renter(Machine(tmp_path, name), env, sid, go) for name in ("a", "b")]
    go.touch()
    outcomes = [_outcome(m, 90) for m in machines]
    orders = _orders_after_quiet(counting)
    assert [o["si"] for o in orders] == [sid]
    made = [o for o in outcomes if o["kind"] == "order"]
    refused = [o for o in outcomes if o["kind"] == "error"]
    assert [o["order_id"] for o in made] == [orders[0]["id"]], outcomes
    assert [o["type"] for o in refused] == ["ServerAlreadyRentedError"], outcomes
    assert counting.refusals() == 0


@pytest.mark.slow
def test_a_claim_holder_killed_holds_the_server_only_until_its_lease_ends(
    counting: CountingSandbox, redis_url: str, tmp_path: Path
) -> None:
    """Machine A dies (SIGKILL) with its create_order on the wire; B, waiting for the
    server, gets its claim once A's lease (2 s) ends, with the next fence, and rents it."""
    env = _env(counting, redis_url)
    sid = _fleet_server(counting, redis_url)
    counting.control("POST", "faults", endpoint="create_order", fault="timeout")
    key, _fence = claim_keys(key_digest(counting.demo_key), f"server-{sid}")
    server = redis.Redis.from_url(redis_url)
    go_a, go_b = tmp_path / "go-a", tmp_path / "go-b"
    a = _renter(Machine(tmp_path, "a"), env, sid, go_a, timeout="60", lease="2")
    b = _renter(Machine(tmp_path, "b"), env, sid, go_b, lease="2")
    go_a.touch()
    wait_until(lambda: not counting.control("GET", "faults")["faults"], 30, "A's send")
    token = server.get(key)
    assert token is not None
    go_b.touch()
    time.sleep(1.0)
    assert b.proc.poll() is None and server.get(key) == token  # B waits: A still holds
    a.proc.send_signal(signal.SIGKILL)
    a.finish(10)
    killed_at, left = time.time(), server.pttl(key) / 1000
    outcome = _outcome(b, 60)
    assert outcome["kind"] == "order", outcome
    assert outcome["at"] >= killed_at + left - 0.1  # not before the dead holder's lease ended
    assert int(str(server.get(f"{key}:fence"), "ascii")) == int(token.rsplit(b":", 1)[1]) + 1
    assert [o["id"] for o in _orders_after_quiet(counting)] == [outcome["order_id"]]
    assert counting.refusals() == 0


@pytest.mark.slow
def test_a_holder_back_after_its_lease_cannot_claim_the_order_it_then_finds(
    counting: CountingSandbox, redis_url: str, tmp_path: Path
) -> None:
    """A's answer is lost and A is stopped (SIGSTOP) past its lease; B takes the claim and
    rents the server. A, resumed, finds B's order new on the server, but its claim's fence
    is stale: 'may exist', not B's order reported as A's."""
    env = _env(counting, redis_url)
    sid = _fleet_server(counting, redis_url)
    counting.control("POST", "faults", endpoint="create_order", fault="timeout")
    key, _fence = claim_keys(key_digest(counting.demo_key), f"server-{sid}")
    server = redis.Redis.from_url(redis_url)
    go_a, go_b = tmp_path / "go-a", tmp_path / "go-b"
    a = _renter(Machine(tmp_path, "a"), env, sid, go_a, timeout="6", lease="1.5")
    b = _renter(Machine(tmp_path, "b"), env, sid, go_b)
    go_a.touch()
    wait_until(lambda: not counting.control("GET", "faults")["faults"], 30, "A's send")
    a.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: server.exists(key) == 0, 10, "A's lease to end")
        go_b.touch()
        mine = _outcome(b, 60)
    finally:
        a.proc.send_signal(signal.SIGCONT)
    late = _outcome(a, 60)
    assert mine["kind"] == "order", mine
    assert late["kind"] == "error" and late["type"] == "OrderUnconfirmedError", late
    assert (
        f"order {mine['order_id']} appeared on it, but the claim on server {sid}"
        in (late["message"])
    )
    assert "may exist" in late["message"]
    assert [o["id"] for o in _orders_after_quiet(counting)] == [mine["order_id"]]
    assert counting.refusals() == 0
