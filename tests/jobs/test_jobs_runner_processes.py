"""The runner as a real process against a sandbox server on 127.0.0.1 (time scale 10):
Ctrl-C (SIGINT) ends the job with its order cancelled; a runner killed with SIGKILL is
resumed from another process without a second rental, streaming on from the bytes it
had; the machine's watchdog ends the command of a killed runner, and ``stop_job`` from
here cancels its order. Also in-process: a runner killed while ``create_order`` ran is
resumed from its ledger intent onto the order it made."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from clore import Clore
from clore.jobs import JobRecord, JobStore, get_job, resume_job, stop_job
from conftest import FAST, LiveSandbox, Seen, job_spec

pytestmark = pytest.mark.slow

#: Runner options for the subprocesses (JSON: RunOptions' keyword arguments).
QUICK: dict[str, Any] = {
    "check_interval": 0.3,
    "poll": 0.05,
    "heartbeat_timeout": 30,
    "reconnect_budget": 10,
    "connect_timeout": 5,
    "wait_timeout": 60,
    "stop_poll": 0.1,
    "stop_grace": 1.0,
}
ON_A_4090: dict[str, Any] = {"gpu": "4090", "gpus": 1, "verify": False}


def _job_orders(client: Clore, before: set[int]) -> list[Any]:
    return [o for o in client.my_orders(include_completed=True) if o.id not in before]


def _wait(predicate: Any, timeout: float = 30.0, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")


def test_ctrl_c_interrupts_the_runner_and_cancels_the_order(live_sandbox: LiveSandbox) -> None:
    """SIGINT to a runner whose command runs: it stops the command, cancels the order,
    prints the finished event (interrupted) and exits 130."""
    client = live_sandbox.client()
    before = {o.id for o in client.my_orders(include_completed=True)}
    runner = live_sandbox.runner({"command": "echo up; sleep 120", **ON_A_4090}, QUICK)
    try:
        runner.wait_for(lambda e: e["event"] == "running")
        runner.proc.send_signal(signal.SIGINT)
        code = runner.rest(timeout=60)
    finally:
        runner.kill()
    assert code == 130
    finished = runner.events[-1]
    assert (finished["event"], finished["reason"], finished["cancelled"]) == (
        "finished",
        "interrupted",
        True,
    )
    assert "stop_requested" in [e["event"] for e in runner.events]
    (order,) = _job_orders(client, before)
    assert order.expired and order.id == finished["order_id"]
    assert get_job(finished["job"]).state == "stopped"


def test_a_killed_runner_is_resumed_without_a_second_rental(
    live_sandbox: LiveSandbox, tmp_path: Path
) -> None:
    """SIGKILL while the command prints: the order keeps running; resume_job (here, a
    new process's view) finds it, follows the command from the bytes already kept, brings
    the result back and cancels the order. One order in all; every line once."""
    client = live_sandbox.client()
    before = {o.id for o in client.my_orders(include_completed=True)}
    command = (
        "for i in $(seq 1 30); do echo tick $i; sleep 0.1; done; "
        "mkdir -p out; echo done > out/result.txt"
    )
    spec = {"command": command, "outputs": ["out"], **ON_A_4090}
    runner = live_sandbox.runner(spec, QUICK, output_dir=str(tmp_path))
    try:
        started = runner.wait_for(lambda e: e["event"] == "running")
        job_id = started["job"]
        store = JobStore()
        _wait(lambda: store.read_log(job_id, "stdout").count(b"\n") >= 3)
    finally:
        runner.kill()
    record = get_job(job_id)
    assert record.state == "running" and record.order_id is not None
    assert not client.get_order(record.order_id).expired
    seen = Seen()
    result = resume_job(client, job_id, options=FAST, **seen.callbacks())
    assert (result.reason, result.exit_code) == ("succeeded", 0)
    assert seen.first("job_started").get("resumed") is True
    assert "renting" not in seen.names()
    (order,) = _job_orders(client, before)
    assert order.id == record.order_id and order.expired
    lines = JobStore().read_log(job_id, "stdout").decode().splitlines()
    assert lines == [f"tick {i}" for i in range(1, 31)]
    assert (tmp_path / "out" / "result.txt").read_text() == "done\n"
    assert get_job(job_id).state == "done"


def test_the_watchdog_ends_the_command_of_a_killed_runner_and_stop_job_cancels(
    live_sandbox: LiveSandbox,
) -> None:
    """A runner killed with SIGKILL stops heart-beating: the machine's watchdog ends its
    command (exit 137, the reason recorded) within its timeout; stop_job from here, with
    no runner alive, ends the job and cancels the order."""
    import asyncio

    from clore.jobs.remote import JobPaths, Session
    from clore.rentals import credentials_for, known_hosts_path
    from clore.rentals.verify import target_of

    client = live_sandbox.client()
    options = {**QUICK, "heartbeat_timeout": 2}
    runner = live_sandbox.runner({"command": "echo up; sleep 120", **ON_A_4090}, options)
    try:
        job_id = runner.wait_for(lambda e: e["event"] == "running")["job"]
    finally:
        runner.kill()
    record: JobRecord = get_job(job_id)
    assert record.order_id is not None and record.remote is not None
    order = client.get_order(record.order_id)
    credentials = credentials_for(order)
    assert credentials is not None
    paths = JobPaths.from_dict(record.remote)

    async def status() -> Any:
        session = await Session.open(
            target_of(order), credentials, known_hosts=known_hosts_path(order)
        )
        try:
            return await session.status(paths)
        finally:
            await session.close()

    seen = _wait(lambda: (s := asyncio.run(status())).exit_code is not None and s, timeout=30)
    assert seen.exit_code == 137 and seen.reason is not None and "watchdog" in seen.reason
    assert not client.get_order(order.id).expired  # the watchdog cannot cancel: no API key
    final = stop_job(client, job_id, reason="cleanup", options=FAST)
    assert (final.state, final.reason, final.cancelled) == ("stopped", "stopped", True)
    assert client.get_order(order.id).expired


def test_a_runner_killed_during_create_order_is_resumed_onto_the_order_it_made(
    job_client: Clore,
) -> None:
    """The record says renting, with a pending ledger intent, and the order exists (the
    runner died before writing its id): resume_job settles the intent with my_orders,
    runs the job on that order and rents nothing else."""
    from clore.jobs._ledger import Ledger
    from clore.market import PriceContext, parse_filters
    from clore.rentals import RentalLogins
    from clore.rentals.choice import choose

    spec = job_spec("echo on-the-found-order")
    server = choose(
        job_client.marketplace(), parse_filters(spec.filters), PriceContext("bitcoin")
    ).candidates[0]
    store = JobStore()
    now = time.time()
    job_id = "deadbeef"
    intent = Ledger(store.root / "ledger.json", job_client).intend(
        job_id=job_id,
        server_id=server.id,
        price=float(server.price_per_day("bitcoin") or 0),
        currency="bitcoin",
        owner="gone-runner",
        at=time.time(),
        server_at=job_client.server_time(),
    )
    order = job_client.create_order(
        server.id, spec.image, ports={"22": "tcp"}, ssh_password="Dead12345"
    )
    RentalLogins().remember(order, password="Dead12345")
    store.put(
        JobRecord(
            id=job_id,
            name=spec.name,
            state="renting",
            created_at=now,
            updated_at=now,
            spec=spec.to_json(),
            rental_intent=intent.id,
            server_id=server.id,
            currency="bitcoin",
        )
    )
    before = len(job_client.my_orders(include_completed=True))
    seen = Seen()
    result = resume_job(job_client, job_id, options=FAST, **seen.callbacks())
    assert (result.reason, result.orders) == ("succeeded", (order.id,))
    assert bytes(seen.stdout) == b"on-the-found-order\n"
    assert len(job_client.my_orders(include_completed=True)) == before
    assert job_client.get_order(order.id).expired
    settled = Ledger(store.root / "ledger.json", job_client).get(intent.id)
    assert settled is not None and (settled.status, settled.order_id) == ("rented", order.id)


def test_resume_refuses_a_job_whose_runner_is_alive(job_client: Clore) -> None:
    """A record whose runner is this very process (alive) is not taken over twice."""
    from clore._holder import this_process
    from clore.jobs import JobRunningError

    spec = job_spec("true")
    now = time.time()
    JobStore().put(
        JobRecord(
            id="a11ve000",
            name="x",
            state="running",
            created_at=now,
            updated_at=now,
            spec=spec.to_json(),
            runner=this_process().to_json(),
            pid=12345678,
        )
    )
    with pytest.raises(JobRunningError, match="is running in process"):
        resume_job(job_client, "a11ve000", options=FAST)
