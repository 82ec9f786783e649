"""The job runner end to end on the in-process sandbox, whose orders are real machines
(SSH on 127.0.0.1): the command's output comes back live and apart, result files come
back, exit codes propagate, and every ending leaves no order running."""

from __future__ import annotations

from pathlib import Path

import pytest

from clore import Clore
from clore.jobs import (
    JobEvent,
    JobResult,
    JobStore,
    arun_job,
    get_job,
    job_logs,
    list_jobs,
    run_job,
)
from clore.sandbox import Sandbox
from conftest import FAST, Seen, assert_all_ended, job_spec, orders_of

pytestmark = pytest.mark.slow

RESULT = "mkdir -p out && cat hello.txt > out/result.txt && echo 42 >> out/result.txt"


def test_a_job_brings_its_result_back_and_cancels_its_order(
    job_client: Clore, job_workdir: Path, tmp_path: Path
) -> None:
    """The working directory goes up (minus .gitignore's matches), the command writes
    out/result.txt, which comes back; exit 0; stdout and stderr arrive apart; the order
    is cancelled and the record says done."""
    seen = Seen()
    command = f"{RESULT} && ls && echo to-stdout && echo to-stderr >&2"
    spec = job_spec(command, workdir=str(job_workdir), outputs=("out",))
    result = run_job(
        job_client, spec, options=FAST, output_dir=tmp_path / "got", **seen.callbacks()
    )
    assert (result.reason, result.exit_code, result.command_exit_code) == ("succeeded", 0, 0)
    got = tmp_path / "got" / "out" / "result.txt"
    assert got.read_text() == "hello from the laptop\n42\n"
    assert result.outputs == (tmp_path / "got" / "out",)
    assert b"hello.txt" in seen.stdout and b"ignored.log" not in seen.stdout
    assert seen.stdout.endswith(b"to-stdout\n") and bytes(seen.stderr) == b"to-stderr\n"
    assert_all_ended(job_client, result)
    names = seen.names()
    for step in (
        "job_started",
        "server_chosen",
        "renting",
        "rented",
        "ready",
        "uploading",
        "uploaded",
        "running",
        "downloading",
        "downloaded",
        "cancelling",
        "cancelled",
        "finished",
    ):
        assert step in names, step
    assert names.index("rented") < names.index("running") < names.index("cancelled")
    assert names[-1] == "finished" and seen.events[-1].get("summary") == result.summary
    record = get_job(result.job_id)
    assert (record.state, record.reason, record.exit_code, record.cancelled) == (
        "done",
        "succeeded",
        0,
        True,
    )
    assert record.cost is not None and result.cost == record.cost and result.cost > 0
    assert job_logs(job_client, result.job_id) == bytes(seen.stdout)
    assert job_logs(job_client, result.job_id, "stderr") == b"to-stderr\n"
    assert [r.id for r in list_jobs()] == [result.job_id]


def test_a_failing_command_is_the_jobs_exit_code_and_its_order_is_cancelled(
    job_client: Clore, tmp_path: Path
) -> None:
    """Exit 3 is the job's 3 (reason failed); its outputs still come back."""
    spec = job_spec("mkdir -p out; echo partial > out/log.txt; exit 3", outputs=("out",))
    result = run_job(job_client, spec, options=FAST, output_dir=tmp_path)
    assert (result.reason, result.exit_code, result.command_exit_code) == ("failed", 3, 3)
    assert (tmp_path / "out" / "log.txt").read_text() == "partial\n"
    assert_all_ended(job_client, result)
    assert get_job(result.job_id).state == "failed"


def test_a_failing_setup_fails_the_job_before_the_command(job_client: Clore) -> None:
    """The setup's exit code is the job's; the command never runs."""
    seen = Seen()
    from dataclasses import replace

    spec = replace(job_spec("echo should-not-run"), setup="echo setting-up; exit 7")
    result = run_job(job_client, spec, options=FAST, **seen.callbacks())
    assert (result.reason, result.exit_code) == ("failed", 7)
    assert b"should-not-run" not in seen.stdout and b"setting-up" in seen.stdout
    assert "setup_started" in seen.names()
    assert_all_ended(job_client, result)


def test_max_spend_stops_the_job_and_cancels_the_order(
    sandbox: Sandbox, job_client: Clore, tmp_path: Path
) -> None:
    """Once the command runs, the sandbox moves three hours on: spend plus fees pass
    max_spend, the command is stopped, its outputs come back, the order is cancelled."""
    seen = Seen()

    def on_event(event: JobEvent) -> None:
        seen.events.append(event)
        if event.event == "running":
            sandbox.advance(3 * 3600)

    spec = job_spec(
        "mkdir -p out; echo started > out/log.txt; sleep 60",
        outputs=("out",),
        max_spend="0.000005btc",
    )
    result = run_job(job_client, spec, options=FAST, output_dir=tmp_path, on_event=on_event)
    assert (result.reason, result.exit_code, result.command_exit_code) == ("max_spend", 124, None)
    limit = seen.first("limit_reached")
    assert limit.get("limit") == "max_spend" and limit.get("value") >= 0.000005
    assert (tmp_path / "out" / "log.txt").read_text() == "started\n"
    assert_all_ended(job_client, result)
    assert get_job(result.job_id).state == "stopped"


def test_max_time_stops_the_job_and_cancels_the_order(sandbox: Sandbox, job_client: Clore) -> None:
    """max_time counts server seconds since the job's order was created: two hours on,
    a one-hour job is stopped and its order cancelled."""
    seen = Seen()

    def on_event(event: JobEvent) -> None:
        seen.events.append(event)
        if event.event == "running":
            sandbox.advance(2 * 3600)

    result = run_job(
        job_client, job_spec("sleep 60", max_time="1h"), options=FAST, on_event=on_event
    )
    assert (result.reason, result.exit_code) == ("max_time", 124)
    assert seen.first("limit_reached").get("limit") == "max_time"
    assert_all_ended(job_client, result)


def test_idle_gpus_stop_the_job_and_busy_ones_do_not(
    sandbox: Sandbox, job_client: Clore, tmp_path: Path
) -> None:
    """A command that leaves the GPU at 0 % is stopped once ten server minutes passed
    idle; one that declares load the whole time (the sandbox's nvidia-smi reads it) runs
    to its end under the same clock."""
    import threading

    done = threading.Event()

    def tick() -> None:
        while not done.wait(0.2):
            sandbox.advance(240)  # four server minutes every 0.2 s

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        seen = Seen()
        idle = run_job(
            job_client, job_spec("sleep 60", idle="10m"), options=FAST, **seen.callbacks()
        )
        busy_command = (
            'exec 9>"$CLORE_SANDBOX_DIR/load/job" && flock 9 && echo util=90 >&9 && sleep 3'
        )
        busy = run_job(job_client, job_spec(busy_command, idle="10m"), options=FAST)
    finally:
        done.set()
        ticker.join()
    assert (idle.reason, idle.exit_code) == ("idle", 124)
    event = seen.first("idle")
    assert event.get("seconds") >= 600 and event.get("utilization") < 10
    assert_all_ended(job_client, idle)
    assert (busy.reason, busy.exit_code) == ("succeeded", 0)
    assert_all_ended(job_client, busy)


def test_a_dropped_connection_reconnects_and_streams_every_line_once(
    sandbox: Sandbox, job_client: Clore
) -> None:
    """The machine cuts every SSH connection while the command prints: the runner
    reconnects, streaming resumes at the offsets reached, no line lost or repeated."""
    import threading

    seen = Seen()

    def on_event(event: JobEvent) -> None:
        seen.events.append(event)
        if event.event == "running":
            order_id = event.order_id
            threading.Timer(1.0, sandbox.set_access_fault, (order_id, "drop")).start()

    command = "for i in $(seq 1 40); do echo line $i; sleep 0.08; done"
    result = run_job(
        job_client, job_spec(command), options=FAST, on_event=on_event, on_stdout=seen.stdout.extend
    )
    assert (result.reason, result.exit_code) == ("succeeded", 0)
    names = seen.names()
    assert "reconnecting" in names and "reconnected" in names
    assert names.index("reconnecting") < names.index("reconnected")
    expected = "".join(f"line {i}\n" for i in range(1, 41)).encode()
    assert bytes(seen.stdout) == expected
    assert_all_ended(job_client, result)


def test_a_connection_that_does_not_come_back_ends_the_job_and_cancels(
    sandbox: Sandbox, job_client: Clore
) -> None:
    """The SSH port refuses connections past the reconnect budget: connection_lost, and
    the order is cancelled (through the API, which is still reachable)."""
    from dataclasses import replace

    def on_event(event: JobEvent) -> None:
        if event.event == "running":
            order_id = event.order_id
            sandbox.set_access_fault(order_id, "refuse")
            sandbox.set_access_fault(order_id, "drop")

    options = replace(FAST, reconnect_budget=2.0)
    result = run_job(job_client, job_spec("sleep 60"), options=options, on_event=on_event)
    assert (result.reason, result.exit_code) == ("connection_lost", 255)
    assert_all_ended(job_client, result)
    assert get_job(result.job_id).state == "lost"


def test_a_lying_cheapest_server_is_cancelled_free_and_the_next_one_runs_the_job(
    sandbox: Sandbox, job_client: Clore
) -> None:
    """The cheapest candidate reports another GPU: verification fails, its order is
    cancelled inside the free window (no creation fee), the job runs on the next."""
    from clore.market import PriceContext, parse_filters
    from clore.rentals.choice import choose
    from clore.sandbox.backend.billing import creation_fee_charged

    spec = job_spec("echo ran-here", verify=True)
    ranked = choose(job_client.marketplace(), parse_filters(spec.filters), PriceContext("bitcoin"))
    liar, honest = ranked.candidates[0], ranked.candidates[1]
    sandbox.set_server(liar.id, delivers={"gpu": "NVIDIA GeForce RTX 3060"})
    seen = Seen()
    result = run_job(job_client, spec, options=FAST, **seen.callbacks())
    assert (result.reason, result.exit_code) == ("succeeded", 0)
    first, second = orders_of(job_client, result)
    assert (first.si, second.si) == (liar.id, honest.id)
    failed = seen.first("verify_failed")
    assert failed.get("cancelled") is True and failed.get("in_window") is True
    assert "gpu_model" in failed.get("failed") and failed.get("next_server_id") == honest.id
    assert seen.names().count("verified") == 1 and bytes(seen.stdout) == b"ran-here\n"
    sandbox.advance(3600)
    record = sandbox.backend.order_record(first.id)
    assert record is not None and creation_fee_charged(record) == 0.0
    assert_all_ended(job_client, result)


def test_an_outbid_spot_job_recovers_on_another_server_with_its_checkpoint(
    sandbox: Sandbox, job_client: Clore, tmp_path: Path
) -> None:
    """A spot job checkpoints into out/; another renter outbids it: the runner says so,
    cancels the lost offer, rents the next server, uploads the checkpoint and restarts
    the command there, which finds it and finishes."""
    from dataclasses import replace

    rival_key, _ = sandbox.create_user("rival", {"bitcoin": 1.0})
    rival = sandbox.client(rival_key)
    seen = Seen()

    def on_event(event: JobEvent) -> None:
        seen.events.append(event)
        if event.event == "checkpointed" and seen.names().count("checkpointed") == 1:
            lost = job_client.get_order(event.order_id)
            rival.create_order(
                lost.si,
                "ubuntu:22.04",
                order_type="spot",
                currency="bitcoin",
                spotprice=float(lost.price) * 3,
            )

    command = (
        "mkdir -p out; if [ -f out/step1 ]; then echo resumed > out/result.txt; exit 0; fi; "
        "echo first > out/step1; sleep 60"
    )
    spec = job_spec(command, spot=True, recover=True, outputs=("out",))
    options = replace(FAST, checkpoint_interval=0.3)
    result = run_job(job_client, spec, options=options, output_dir=tmp_path, on_event=on_event)
    assert (result.reason, result.exit_code) == ("succeeded", 0)
    first, second = orders_of(job_client, result)
    assert first.si != second.si and first.spot and second.spot
    names = seen.names()
    assert (
        names.index("outbid")
        < names.index("recovering")
        < names.index("rented", names.index("recovering"))
    )
    recovering = seen.first("recovering")
    assert recovering.get("carried") == 1 and "restarts from scratch" in recovering.message
    assert (tmp_path / "out" / "result.txt").read_text() == "resumed\n"
    assert_all_ended(job_client, result)
    rival.close()


def test_an_existing_order_runs_the_job_and_keep_leaves_it_running(
    sandbox: Sandbox, job_client: Clore
) -> None:
    """order_id runs the job on a rental made beforehand (logged in with its password);
    keep leaves it running and says how to stop it."""
    from clore.rentals import RentalLogins

    server = next(
        s
        for s in job_client.marketplace()
        if not s.rented and "4090" in s.specs.gpu and s.accepts("bitcoin")
    )
    order = job_client.create_order(
        server.id, "ubuntu:22.04", ports={"22": "tcp"}, ssh_password="Given12345"
    )
    RentalLogins().remember(order, password="Given12345")
    seen = Seen()
    spec = job_spec("echo on-the-given-order", order_id=order.id, keep=True)
    result = run_job(job_client, spec, options=FAST, **seen.callbacks())
    assert (result.reason, result.orders, result.kept, result.cancelled) == (
        "succeeded",
        (order.id,),
        True,
        False,
    )
    assert bytes(seen.stdout) == b"on-the-given-order\n"
    assert seen.first("rented").get("adopted") is True
    assert f"clore cancel {order.id}" in seen.first("kept").message
    assert not job_client.get_order(order.id).expired
    assert "kept running" in result.summary
    job_client.cancel_order(order.id)


def test_a_bad_workdir_stops_before_anything_is_rented(job_client: Clore, tmp_path: Path) -> None:
    """A working directory that is not one ends the job at once: no order, exit 1."""
    before = len(job_client.my_orders(include_completed=True))
    spec = job_spec("true")
    from dataclasses import replace

    spec = replace(spec, workdir=tmp_path / "missing")
    result = run_job(job_client, spec, options=FAST)
    assert (result.reason, result.exit_code, result.orders) == ("error", 1, ())
    assert "workdir" in result.message
    assert len(job_client.my_orders(include_completed=True)) == before


def test_stop_job_from_another_thread_ends_a_running_job(job_client: Clore) -> None:
    """stop_job asks the live runner (a stop request it polls), waits for the ending and
    returns the final record: stopped, order cancelled."""
    import threading

    from clore.jobs import stop_job

    started = threading.Event()
    ids: list[str] = []

    def on_event(event: JobEvent) -> None:
        if event.event == "running":
            ids.append(event.job)
            started.set()

    results: list[JobResult] = []
    runner = threading.Thread(
        target=lambda: results.append(
            run_job(job_client, job_spec("sleep 60"), options=FAST, on_event=on_event)
        )
    )
    runner.start()
    assert started.wait(60)
    record = stop_job(job_client, ids[0], reason="enough", wait=30)
    runner.join(60)
    assert (record.state, record.reason, record.cancelled) == ("stopped", "stopped", True)
    (result,) = results
    assert result.exit_code == 143
    assert_all_ended(job_client, result)


async def test_arun_job_runs_the_same_job_with_an_async_client(sandbox: Sandbox) -> None:
    """The async API with an AsyncClore: the same job, the same ending."""
    async with sandbox.async_client() as client:
        result = await arun_job(client, job_spec("echo async; exit 5"), options=FAST)
        assert (result.reason, result.exit_code) == ("failed", 5)
        orders = {o.id: o for o in await client.my_orders(include_completed=True)}
        assert all(orders[i].expired for i in result.orders)
    assert JobStore().get(result.job_id).state == "failed"
