"""Acting on a verification in the free window, against the in-process sandbox (its
ManualClock) and real machines: a failing order is cancelled with the findings as its
issue and its host listed; later, or not ours, it is not cancelled without being told."""

from __future__ import annotations

import msgspec
import pytest
from verify_support import EIGHT_GPUS, PASSWORD, QUICK, TWO_GPUS, StartListing

import clore
from clore.rentals.verify import (
    CANCEL_MARGIN,
    FREE_WINDOW,
    BadHosts,
    Check,
    Credentials,
    Measured,
    Report,
    Settlement,
    Target,
    asettle,
    averify,
    cancel_failed,
    cancel_when_asked,
    decide,
    issue_text,
    settle,
    verify,
    verify_and_settle,
)
from clore.sandbox import Sandbox

CREDS = Credentials(password=PASSWORD)


def rent(client: clore.Clore, sandbox: Sandbox, server_id: int) -> clore.Order:
    """An on-demand order with SSH on ``server_id``, provisioned."""
    order = client.create_order(
        server_id, "ubuntu:22.04", ports={"22": "tcp"}, ssh_password=PASSWORD
    )
    sandbox.advance(15)
    return client.get_order(order.id)


def recorded_issue(sandbox: Sandbox, order_id: int) -> str | None:
    """The issue text the sandbox stored with the order (its ``cancel_order`` keeps it)."""
    user = sandbox.backend.authenticate(sandbox.demo_key)
    assert user is not None
    views = [v for v in sandbox.backend.my_orders(user, True) if v.order.id == order_id]
    return views[0].order.issue


def ended(client: clore.Clore, order_id: int) -> bool:
    return next(o for o in client.my_orders(include_completed=True) if o.id == order_id).expired


def machine_for(
    start_listing: StartListing, order: clore.Order, server_id: int, **lie: object
) -> Target:
    target, _ = start_listing(server_id, order_id=order.id, delivers=lie)
    return target


def test_a_failing_machine_is_cancelled_in_the_window_with_its_findings(
    sandbox: Sandbox, clore_client: clore.Clore, start_listing: StartListing
) -> None:
    """Fewer GPUs than listed, 15 s after creation: cancelled with the findings as issue
    (recorded by the sandbox), the server and its owner on the bad-host list."""
    order = rent(clore_client, sandbox, TWO_GPUS)
    target = machine_for(start_listing, order, TWO_GPUS, gpu_count=1)
    hosts = BadHosts()
    settled = verify_and_settle(
        clore_client,
        order,
        CREDS,
        created_by_us=True,
        target=target,
        bad_hosts=hosts,
        options=QUICK,
    )
    assert (settled.outcome, settled.move_on, settled.in_window) == ("cancelled", True, True)
    assert 15.0 <= settled.elapsed < 20.0  # provisioning, and the pacing of the calls
    assert settled.issue == issue_text(settled.report)
    assert recorded_issue(sandbox, order.id) == settled.issue
    assert settled.issue.splitlines()[1] == (
        "gpu_count fail: listed 2, measured 1, 1 fewer than listed"
    )
    assert ended(clore_client, order.id)
    found = hosts.is_bad(TWO_GPUS)
    assert found is not None and found.entry.owner == 9662
    assert (found.entry.order_id, found.entry.checks) == (order.id, ["gpu_count"])
    assert settled.bad_host == found.entry


def test_a_failure_past_the_window_asks_and_the_yes_rule_cancels_a_hard_one(
    sandbox: Sandbox, clore_client: clore.Clore, start_listing: StartListing
) -> None:
    """With less than the margin of the window left nothing is cancelled: ``ask``; the
    ``--yes`` rule then cancels a GPU-count failure (a hard one) with the same issue."""
    order = rent(clore_client, sandbox, TWO_GPUS)
    target = machine_for(start_listing, order, TWO_GPUS, gpu_count=1)
    report = verify(target, CREDS, listing=order, options=QUICK)
    sandbox.advance(FREE_WINDOW - CANCEL_MARGIN - 15)
    order = clore_client.get_order(order.id)  # the client learns the server's time
    hosts = BadHosts()
    asked = settle(clore_client, order, report, created_by_us=True, bad_hosts=hosts)
    assert (asked.outcome, asked.in_window, asked.move_on) == ("ask", False, False)
    assert not ended(clore_client, order.id)
    assert hosts.is_bad(TWO_GPUS) is None
    assert cancel_when_asked(report)
    done = cancel_failed(clore_client, asked, order, bad_hosts=hosts)
    assert done.outcome == "cancelled"
    assert recorded_issue(sandbox, order.id) == asked.issue
    assert hosts.is_bad(TWO_GPUS) is not None


def test_an_order_not_created_here_is_never_cancelled_unless_named(
    sandbox: Sandbox, clore_client: clore.Clore, start_listing: StartListing
) -> None:
    """``created_by_us=False``: a failure is reported, not acted on; naming the id
    (``cancel_id``) allows the cancel."""
    order = rent(clore_client, sandbox, EIGHT_GPUS)
    target = machine_for(start_listing, order, EIGHT_GPUS, gpu_error=True)
    report = verify(target, CREDS, listing=order, options=QUICK)
    assert [c.name for c in report.failed()] == ["gpu_health"]
    left = settle(clore_client, order, report, created_by_us=False)
    assert left.outcome == "not_ours"
    assert not ended(clore_client, order.id) and recorded_issue(sandbox, order.id) is None
    other = settle(clore_client, order, report, created_by_us=False, cancel_id=order.id + 1)
    assert other.outcome == "not_ours"
    named = settle(clore_client, order, report, created_by_us=False, cancel_id=order.id)
    assert named.outcome == "cancelled"
    assert "nvidia-smi exited 0 but GPU 7 shows ERR!" in (recorded_issue(sandbox, order.id) or "")


def test_an_honest_machine_is_kept(
    sandbox: Sandbox, clore_client: clore.Clore, start_listing: StartListing
) -> None:
    """A machine that passes stays rented, nothing listed."""
    order = rent(clore_client, sandbox, TWO_GPUS)
    target = machine_for(start_listing, order, TWO_GPUS)
    hosts = BadHosts()
    settled = verify_and_settle(
        clore_client,
        order,
        CREDS,
        created_by_us=True,
        target=target,
        bad_hosts=hosts,
        options=QUICK,
    )
    assert (settled.outcome, settled.issue) == ("kept", None)
    assert not ended(clore_client, order.id)
    assert hosts.load().entries() == []


def test_a_machine_that_refuses_the_login_is_cancelled_but_not_listed(
    sandbox: Sandbox, clore_client: clore.Clore, start_listing: StartListing
) -> None:
    """Unreachable in the window: cancelled for free, but the host is not blamed (the
    cause may be the renter's); ``cancel_unreachable=False`` asks instead."""
    order = rent(clore_client, sandbox, TWO_GPUS)
    target = machine_for(start_listing, order, TWO_GPUS)
    wrong = Credentials(password="Wrong12345")
    report = verify(target, wrong, listing=order, options=QUICK)
    hosts = BadHosts()
    kept = settle(clore_client, order, report, created_by_us=True, cancel_unreachable=False)
    assert kept.outcome == "ask"
    settled = settle(clore_client, order, report, created_by_us=True, bad_hosts=hosts)
    assert (settled.outcome, settled.bad_host) == ("cancelled", None)
    assert (
        (recorded_issue(sandbox, order.id) or "")
        .splitlines()[1]
        .startswith("ssh fail: login refused")
    )
    assert hosts.load().entries() == []


def test_a_refused_cancel_says_the_order_may_still_bill(
    sandbox: Sandbox, clore_client: clore.Clore, start_listing: StartListing
) -> None:
    """When the API refuses the cancel, the outcome is ``cancel_failed`` with its error,
    and the host is not listed (nothing was settled)."""
    order = rent(clore_client, sandbox, TWO_GPUS)
    target = machine_for(start_listing, order, TWO_GPUS, gpu_count=1)
    report = verify(target, CREDS, listing=order, options=QUICK)
    stranger = replace_id(order, 987654321)
    hosts = BadHosts()
    settled = settle(clore_client, stranger, report, created_by_us=True, bad_hosts=hosts)
    assert settled.outcome == "cancel_failed"
    assert "may still be running and billing" in settled.reason
    assert settled.error == "cancel_order: code 2 (invalid input data)"
    assert hosts.load().entries() == []


def replace_id(order: clore.Order, new_id: int) -> clore.Order:
    return msgspec.structs.replace(order, id=new_id)


async def test_asettle_cancels_with_an_async_client(
    sandbox: Sandbox,
    clore_client: clore.Clore,
    async_clore_client: clore.AsyncClore,
    start_listing: StartListing,
) -> None:
    """The async twins verify and settle the same way (the agent server's way); the
    sync ``verify`` refuses to run inside an event loop."""
    order = rent(clore_client, sandbox, EIGHT_GPUS)
    target = machine_for(start_listing, order, EIGHT_GPUS, slow=3.0)
    with pytest.raises(RuntimeError, match="await averify"):
        verify(target, CREDS, listing=order, options=QUICK)
    report = await averify(target, CREDS, listing=order, options=QUICK)
    await async_clore_client.get_order(order.id)  # learns the server's time
    settled = await asettle(async_clore_client, order, report, created_by_us=True)
    assert settled.outcome == "cancelled"
    assert "throughput fail" in (recorded_issue(sandbox, order.id) or "")


# ---- the rule alone ---------------------------------------------------------------------


def a_report(verdict: str, *, reachable: bool = True, hard: bool = True) -> Report:
    check = Check(
        name="gpu_count" if hard else "power_limit",
        verdict=verdict,  # type: ignore[arg-type]
        listed="2",
        measured="1",
        reason="r",
        hard=hard,
    )
    return Report(
        verdict=verdict,  # type: ignore[arg-type]
        host="h",
        port=1,
        started_at=0.0,
        seconds=1.0,
        checks=[check],
        measured=Measured() if reachable else None,
    )


@pytest.mark.parametrize(
    ("elapsed", "action"),
    [
        (0.0, "cancel"),
        (FREE_WINDOW - CANCEL_MARGIN - 1, "cancel"),
        (FREE_WINDOW - CANCEL_MARGIN, "ask"),
        (FREE_WINDOW + 3600, "ask"),
    ],
)
def test_the_window_ends_a_margin_before_ten_minutes(elapsed: float, action: str) -> None:
    """A failure is cancelled automatically only with more than the margin left."""
    decision = decide(
        a_report("fail"), order_id=1, order_ct=1000.0, now=1000.0 + elapsed, created_by_us=True
    )
    assert decision.action == action


def test_a_warning_keeps_and_a_soft_failure_is_not_cancelled_by_the_yes_rule() -> None:
    """Warnings pass; outside the window ``--yes`` cancels hard failures only."""
    kept = decide(a_report("warn"), order_id=1, order_ct=0.0, now=10.0, created_by_us=True)
    assert kept.action == "kept"
    assert not cancel_when_asked(a_report("fail", hard=False))
    assert cancel_when_asked(a_report("fail", hard=True))


def test_a_faster_server_clock_widens_the_margin() -> None:
    """Against a sandbox at 60x, 30 client seconds of margin are 1800 server seconds:
    the rule asks instead of racing the window."""
    report = a_report("fail")
    assert decide(report, order_id=1, order_ct=0.0, now=100.0, created_by_us=True).action == (
        "cancel"
    )
    assert (
        decide(
            report,
            order_id=1,
            order_ct=0.0,
            now=100.0,
            created_by_us=True,
            margin=CANCEL_MARGIN * 60,
        ).action
        == "ask"
    )


def test_a_settlement_is_for_its_own_order() -> None:
    """``cancel_failed`` refuses an order other than the one the settlement is about."""
    decision_report = a_report("fail")
    settlement = Settlement(
        outcome="ask",
        reason="r",
        report=decision_report,
        order_id=1,
        elapsed=700.0,
        in_window=False,
    )
    other = clore.Order(id=2)
    with pytest.raises(ValueError, match="settlement is for order 1"):
        cancel_failed(None, settlement, other)  # type: ignore[arg-type]
