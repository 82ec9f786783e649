"""The runner's requests and its question: a plain job sends only the requests it needs
(against the API each costs about a second of pacing), USD rates are read only when an
amount must be converted, and ``confirm`` is asked with the exact server just before the
first create_order — a no rents nothing. On the in-process sandbox (requests counted at
its transport), with real SSH to its machines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import httpx
import pytest

from clore import Clore
from clore.jobs import JobEvent, Proposal, arun_job, get_job, run_job
from clore.sandbox import BASE_URL, Sandbox
from conftest import FAST, assert_all_ended, job_spec, orders_of

pytestmark = pytest.mark.slow

#: No periodic order checks during these short commands: every request is the job's own.
QUIET = replace(FAST, check_interval=60.0)


@dataclass
class Counted(httpx.BaseTransport):
    """Passes requests on to the sandbox, noting each endpoint and the job's last event."""

    inner: httpx.BaseTransport
    requests: list[tuple[str, str]] = field(default_factory=list)
    last_event: str = ""
    #: Called with each endpoint's name once the sandbox answered it.
    after: Callable[[str], None] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        self.requests.append((name, self.last_event))
        response = self.inner.handle_request(request)
        if self.after is not None:
            self.after(name)
        return response

    def endpoints(self) -> list[str]:
        return [name for name, _ in self.requests]

    def on_event(self, event: JobEvent) -> None:
        self.last_event = event.event


@pytest.fixture
def counted(sandbox: Sandbox) -> Iterator[tuple[Clore, Counted]]:
    """The demo user's client, its requests counted."""
    transport = Counted(sandbox.transport())
    client = Clore(
        api_key=sandbox.demo_key, base_url=BASE_URL, transport=transport, clock=sandbox.clock
    )
    with client:
        yield client, transport


def test_a_plain_job_sends_eight_requests_and_none_on_the_way_it_does_not_need(
    sandbox: Sandbox, counted: tuple[Clore, Counted]
) -> None:
    """A job with no amount to convert and no max_spend: the marketplace once (no USD
    rates), create_order with its two my_orders, one my_orders while waiting, the renter
    fee while the command runs, cancel_order and the one my_orders that confirms it and
    gives the cost; that read's spend is the job's."""
    client, transport = counted

    def on_event(event: JobEvent) -> None:
        transport.on_event(event)
        if event.event == "rented":
            sandbox.advance(30)  # provisioning done: the wait needs a single read

    result = run_job(client, job_spec("echo hi"), options=QUIET, on_event=on_event)
    assert (result.reason, result.exit_code) == ("succeeded", 0)
    main = [(name, at) for name, at in transport.requests if name != "renter_fees"]
    assert main == [
        ("marketplace", "job_started"),
        ("my_orders", "renting"),  # create_order's snapshot
        ("create_order", "renting"),
        ("my_orders", "renting"),  # create_order finds its order
        ("my_orders", "rented"),  # wait_for_order
        ("cancel_order", "cancelling"),
        ("my_orders", "cancelling"),  # confirms the cancel; the final spend
    ]
    fees = [at for name, at in transport.requests if name == "renter_fees"]
    assert len(fees) == 1 and fees[0] not in ("job_started", "server_chosen", "renting")
    assert len(transport.requests) == 8
    (order,) = orders_of(client, result)
    assert order.expired and result.spend == pytest.approx(float(order.spend))
    assert_all_ended(client, result)


def test_an_order_found_provisioned_with_ssh_answering_needs_no_wait(
    sandbox: Sandbox, counted: tuple[Clore, Counted]
) -> None:
    """When the my_orders that found the new order shows it provisioned (the sandbox's
    clock moved past provisioning meanwhile) and its SSH answers, the job goes on
    without another read: seven requests."""
    client, transport = counted

    def after(name: str) -> None:
        if name == "create_order":
            sandbox.advance(30)

    transport.after = after
    result = run_job(client, job_spec("echo hi"), options=QUIET, on_event=transport.on_event)
    assert result.reason == "succeeded"
    names = [name for name, _ in transport.requests]
    assert [n for n in names if n != "renter_fees"] == [
        "marketplace",
        "my_orders",
        "create_order",
        "my_orders",
        "cancel_order",
        "my_orders",
    ]
    assert len(names) == 7
    assert_all_ended(client, result)


def test_a_usd_cap_on_a_btc_order_reads_the_rates_and_the_fee_once_before_renting(
    counted: tuple[Clore, Counted],
) -> None:
    """max_spend in USD, paid in BTC: one spot_marketplace (the USD rates) and the renter
    fee before create_order (the cap is converted and checked from the start), and not
    again."""
    client, transport = counted
    spec = job_spec("echo hi", max_spend="2usd")
    result = run_job(client, spec, options=QUIET, on_event=transport.on_event)
    assert result.reason == "succeeded"
    names = transport.endpoints()
    create = names.index("create_order")
    assert names.count("spot_marketplace") == 1 and names.index("spot_marketplace") < create
    assert names.count("renter_fees") == 1 and names.index("renter_fees") < create
    assert names.count("marketplace") == 1
    assert_all_ended(client, result)


def test_confirm_is_asked_once_with_the_server_that_is_then_rented(
    counted: tuple[Clore, Counted],
) -> None:
    """confirm gets the chosen server, its price per day in the order's currency and the
    limits before any create_order; the order made is on that server at that price."""
    client, transport = counted
    asked: list[tuple[Proposal, list[str]]] = []

    def confirm(proposal: Proposal) -> bool:
        asked.append((proposal, transport.endpoints()))
        return True

    spec = job_spec("echo hi", max_time="2h", idle="15m")
    result = run_job(client, spec, options=QUIET, confirm=confirm)
    assert result.reason == "succeeded"
    ((proposal, sent),) = asked
    assert "create_order" not in sent
    (order,) = orders_of(client, result)
    assert (proposal.server_id, proposal.currency) == (order.si, "bitcoin")
    assert proposal.server is not None and proposal.server.id == order.si
    assert proposal.price_per_day == pytest.approx(float(order.price))
    assert (proposal.max_time, proposal.idle, proposal.max_spend) == (7200.0, 900.0, None)
    assert proposal.order is None and not proposal.spot and proposal.candidates >= 2
    assert_all_ended(client, result)


def test_a_declined_job_rents_nothing_and_ends_declined(counted: tuple[Clore, Counted]) -> None:
    """confirm saying no: the job ends declined (exit 1), create_order never sent, no
    order, no cost; its record says so."""
    client, transport = counted
    before = {o.id for o in client.my_orders(include_completed=True)}
    result = run_job(client, job_spec("echo hi"), options=QUIET, confirm=lambda _: False)
    assert (result.reason, result.exit_code, result.orders, result.cost) == (
        "declined",
        1,
        (),
        None,
    )
    assert "create_order" not in transport.endpoints()
    assert {o.id for o in client.my_orders(include_completed=True)} == before
    assert "nothing rented" in result.summary
    record = get_job(result.job_id)
    assert record.final and record.reason == "declined" and record.order_id is None
    assert record.state == "stopped" and "was not confirmed" in result.summary


async def test_an_async_confirm_is_awaited_and_one_that_raises_is_a_no(sandbox: Sandbox) -> None:
    """arun_job awaits a coroutine confirm; a confirm that raises declines (never rents)."""

    async def no(_: Proposal) -> bool:
        return False

    def broken(_: Proposal) -> bool:
        raise RuntimeError("the question failed")

    async with sandbox.async_client() as client:
        before = await client.my_orders(include_completed=True)
        for confirm in (no, broken):
            result = await arun_job(client, job_spec("echo hi"), options=QUIET, confirm=confirm)
            assert (result.reason, result.orders) == ("declined", ())
        assert await client.my_orders(include_completed=True) == before


def test_confirm_is_asked_before_an_order_you_give_and_a_no_leaves_it_running(
    counted: tuple[Clore, Counted],
) -> None:
    """order_id: confirm gets that order (nothing new rented); a no leaves it running,
    not cancelled."""
    from clore.rentals import RentalLogins

    client, _ = counted
    server = next(
        s
        for s in client.marketplace()
        if not s.rented and "4090" in s.specs.gpu and s.accepts("bitcoin")
    )
    order = client.create_order(
        server.id, "ubuntu:22.04", ports={"22": "tcp"}, ssh_password="Given12345"
    )
    RentalLogins().remember(order, password="Given12345")
    asked: list[Proposal] = []

    def no(proposal: Proposal) -> bool:
        asked.append(proposal)
        return False

    result = run_job(client, job_spec("true", order_id=order.id), options=QUIET, confirm=no)
    assert (result.reason, result.orders) == ("declined", ())
    (proposal,) = asked
    assert proposal.order is not None and proposal.order.id == order.id
    assert proposal.server_id == order.si
    assert not client.get_order(order.id).expired
    client.cancel_order(order.id)
