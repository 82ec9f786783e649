"""``clore jobs``: the jobs ``clore run`` ran here, listed, shown, their logs printed
(``--follow`` while one runs), stopped from another terminal, and resumed after their
runner was killed (SIGKILL) without a second rental. Jobs run on sandbox machines over
real SSH (see test_cli_run.py for the in-process and process set-ups)."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest
from test_cli_run import (  # noqa: F401  (fixtures: clore_cli, live)
    ON_A_4090,
    InProcess,
    LiveServer,
    clore,
    clore_cli,
    live,
    start,
    summary_of,
)

from clore.jobs import JobStore

pytestmark = pytest.mark.slow


def _job_of(summary: str) -> str:
    found = re.match(r"job ([0-9a-f]{8}) ", summary)
    assert found is not None, summary
    return found.group(1)


def test_jobs_lists_shows_and_prints_the_logs_of_a_finished_job(
    clore_cli: InProcess,  # noqa: F811
) -> None:
    """After a run: `jobs` lists it (id, state done, exit 0, its order), `jobs show`
    (by prefix) has its summary, `jobs logs` prints its stdout, `--stderr` its stderr;
    an unknown job is exit 4."""
    command = "echo $((6*7))-out; echo $((6*7))-err >&2"
    ran = clore_cli("run", *ON_A_4090, "--no-verify", "--yes", "--", command)
    assert ran.exit_code == 0, ran.stderr
    job_id = _job_of(summary_of(ran.stderr))
    listed = clore_cli("jobs", "--json")
    assert listed.exit_code == 0, listed.stderr
    (doc,) = [j for j in json.loads(listed.stdout)["jobs"] if j["id"] == job_id]
    assert (doc["state"], doc["exit_code"], doc["reason"]) == ("done", 0, "succeeded")
    order_id = doc["order_id"]
    assert isinstance(order_id, int) and doc["cancelled"] is True
    assert doc["derived"]["summary"] == summary_of(ran.stderr)
    table = clore_cli("jobs").stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "Name", "State", "Order"]
    (row,) = [line for line in table if line.startswith(job_id)]
    assert row.split()[2:5] == ["done", str(order_id), "0"]
    assert clore_cli("jobs", "list", "-q").stdout.split() == [job_id]
    shown = clore_cli("jobs", "show", job_id[:4])
    assert shown.exit_code == 0, shown.stderr
    assert f"job {job_id} " in shown.stdout and "done" in shown.stdout
    assert summary_of(ran.stderr) in shown.stdout
    assert clore_cli("jobs", "logs", job_id).stdout == "42-out\n"
    assert clore_cli("jobs", "logs", job_id, "--stderr").stdout == "42-err\n"
    as_json = json.loads(clore_cli("jobs", "logs", job_id, "--json").stdout)
    assert (as_json["job"], as_json["stream"], as_json["text"]) == (job_id, "stdout", "42-out\n")
    missing = clore_cli("jobs", "logs", "ffffffff")
    assert missing.exit_code == 4
    assert missing.stderr.splitlines() == [
        "clore: error: no job ffffffff (`clore jobs` lists them)"
    ]


def test_logs_follow_prints_the_output_until_the_job_ends(
    live: LiveServer,  # noqa: F811
) -> None:
    """`jobs logs --follow` from another process while the job runs: every line once,
    and it returns when the job has ended."""
    command = "for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.3; done"
    running = start(live, *ON_A_4090, "--no-verify", "--yes", "--", command)
    try:
        job_id = running.wait_for("running")["job"]
        followed = clore("jobs", "logs", job_id, "--follow", server=live, timeout=90)
        code, _err = running.finish()
    finally:
        running.kill()
    assert code == 0
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines() == [f"tick {i}" for i in range(1, 9)]


def test_jobs_stop_ends_a_running_job_from_another_terminal(
    live: LiveServer,  # noqa: F811
) -> None:
    """`jobs stop` while the job's runner lives: the runner ends it (stopped, exit 143),
    its order is cancelled, and the stop prints the summary; `jobs resume` meanwhile is
    refused (exit 1: its runner lives)."""
    before = live.order_ids()
    running = start(live, *ON_A_4090, "--no-verify", "--yes", "--", "echo up; sleep 300")
    try:
        job_id = running.wait_for("running")["job"]
        busy = clore("jobs", "resume", job_id, server=live)
        assert busy.returncode == 1 and f"job {job_id} is running in process" in busy.stderr
        stopped = clore("jobs", "stop", job_id, server=live, timeout=90)
        code, err = running.finish()
    finally:
        running.kill()
    assert stopped.returncode == 0, stopped.stderr
    assert f"job {job_id} stopped on request (exit 143)" in stopped.stdout
    assert code == 143, err
    assert running.events[-1]["reason"] == "stopped"
    (order,) = live.new_orders(before)
    assert order.expired
    again = clore("jobs", "stop", job_id, server=live)
    assert again.returncode == 0 and again.stdout.startswith("already ended: ")


def test_a_killed_runner_is_finished_by_jobs_resume_without_a_second_rental(
    live: LiveServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """SIGKILL to `clore run` while its command prints: `jobs` shows it running with no
    runner; `jobs resume` finds its order (no second one), follows the command from the
    bytes already kept, brings the result back, cancels the order and exits 0."""
    before = live.order_ids()
    command = (
        "for i in $(seq 1 30); do echo tick $i; sleep 0.1; done; "
        "mkdir -p out; echo done > out/result.txt"
    )
    running = start(
        live, *ON_A_4090, "--no-verify", "--yes", "--output", "out",
        "--output-dir", str(tmp_path), "--", command,
    )  # fmt: skip
    try:
        job_id = running.wait_for("running")["job"]
        store = JobStore()
        deadline = time.monotonic() + 30
        while store.read_log(job_id, "stdout").count(b"\n") < 3:
            assert time.monotonic() < deadline, "no output kept in time"
            time.sleep(0.05)
    finally:
        running.proc.send_signal(signal.SIGKILL)
        running.proc.wait(timeout=15)
    listed = json.loads(clore("jobs", "--json", server=live).stdout)["jobs"]
    (doc,) = [j for j in listed if j["id"] == job_id]
    assert doc["state"] == "running" and doc["derived"]["runner_alive"] is False
    assert "running (no runner)" in clore("jobs", server=live).stdout
    (order,) = live.new_orders(before)
    assert not order.expired
    resumed = clore("jobs", "resume", job_id, server=live, timeout=90)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming job" in resumed.stderr and "renting" not in resumed.stderr
    assert f"job {job_id} succeeded (exit 0)" in summary_of(resumed.stderr)
    (again,) = live.new_orders(before)
    assert again.id == order.id and again.expired
    lines = JobStore().read_log(job_id, "stdout").decode().splitlines()
    assert lines == [f"tick {i}" for i in range(1, 31)]
    assert (tmp_path / "out" / "result.txt").read_text() == "done\n"
    finished = clore("jobs", "resume", job_id, server=live)
    assert finished.returncode == 0 and "had already ended" in finished.stderr
