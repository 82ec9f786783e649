"""The job records (one 0600 JSON file per job, changed under its lock), the local
copies of the output, stop requests, the event schema v1 and the one-line summary."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from clore.jobs import (
    EVENT_NAMES,
    FIELDS,
    SCHEMA_VERSION,
    JobNotFoundError,
    JobRecord,
    JobRecordError,
    JobResult,
    JobStore,
    summary_line,
)
from clore.jobs.events import make_job_event
from clore.jobs.records import new_job_id


def record(job_id: str, **fields: object) -> JobRecord:
    now = time.time()
    return JobRecord(id=job_id, name="train", created_at=now, updated_at=now, **fields)  # type: ignore[arg-type]


def test_a_record_is_written_0600_and_read_back(tmp_path: Path) -> None:
    """put writes the record with mode 0600; get reads the same fields back."""
    store = JobStore(tmp_path / "jobs")
    store.put(record("a1b2c3d4", order_id=12, remote={"root": "/root/x"}, offsets=(3, 4)))
    path = store.path("a1b2c3d4")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    back = store.get("a1b2c3d4")
    assert (back.order_id, back.remote, back.offsets) == (12, {"root": "/root/x"}, (3, 4))


def test_find_takes_a_unique_prefix_and_names_ambiguity(tmp_path: Path) -> None:
    """A unique prefix finds its job; a shared one and an unknown one are one-line errors."""
    store = JobStore(tmp_path)
    for job_id in ("abc11111", "abc22222", "def33333"):
        store.put(record(job_id))
    assert store.find("def").id == "def33333"
    assert store.find("abc1").id == "abc11111"
    with pytest.raises(JobNotFoundError, match="names several jobs: abc11111, abc22222"):
        store.find("abc")
    with pytest.raises(JobNotFoundError, match="no job zzz"):
        store.find("zzz")


def test_ids_that_could_name_other_files_are_refused(tmp_path: Path) -> None:
    """A job id is one safe path component: ``../x`` or ``a/b`` never reach a file."""
    store = JobStore(tmp_path)
    for bad in ("../escape", "a/b", "", "UPPER"):
        with pytest.raises(JobNotFoundError):
            store.get(bad)


def test_a_damaged_record_is_a_one_line_error_and_skipped_in_the_list(tmp_path: Path) -> None:
    """A record that is not JSON raises JobRecordError naming the file, not its contents;
    list() skips it and returns the others oldest first."""
    store = JobStore(tmp_path)
    store.put(record("00000001"))
    time.sleep(0.01)
    store.put(record("00000002"))
    store.path("00000003").write_text("{secret-ish garbage")
    with pytest.raises(JobRecordError) as caught:
        store.get("00000003")
    assert "garbage" not in str(caught.value) and "damaged" in str(caught.value)
    assert [r.id for r in store.list()] == ["00000001", "00000002"]


def test_update_changes_under_the_lock_without_losing_writes(tmp_path: Path) -> None:
    """Concurrent updates (threads) of one record each land: none overwrites another."""
    store = JobStore(tmp_path)
    store.put(record("c0ffee00", orders=[]))

    def add(n: int) -> None:
        store.update("c0ffee00", lambda r: r.orders.append(n))

    threads = [threading.Thread(target=add, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(store.get("c0ffee00").orders) == list(range(20))


def test_output_copies_append_and_read_from_an_offset(tmp_path: Path) -> None:
    """append_log keeps each stream apart (0600) and read_log reads from an offset."""
    store = JobStore(tmp_path)
    store.put(record("abcdef01"))
    store.append_log("abcdef01", "stdout", b"one\n")
    store.append_log("abcdef01", "stdout", b"two\n")
    store.append_log("abcdef01", "stderr", b"oops\n")
    assert store.read_log("abcdef01", "stdout") == b"one\ntwo\n"
    assert store.read_log("abcdef01", "stdout", 4) == b"two\n"
    assert store.read_log("abcdef01", "stderr") == b"oops\n"
    assert store.log_size("abcdef01", "stdout") == 8
    mode = stat.S_IMODE(store.log_path("abcdef01", "stdout").stat().st_mode)
    assert mode == 0o600


def test_a_stop_request_is_seen_and_cleared(tmp_path: Path) -> None:
    """request_stop leaves a request stop_requested reads; clear_stop removes it; a stop
    for an unknown job is refused."""
    store = JobStore(tmp_path)
    store.put(record("5709abcd"))
    assert store.stop_requested("5709abcd") is None
    store.request_stop("5709abcd", by="pid 1", reason="enough")
    found = store.stop_requested("5709abcd")
    assert found is not None and (found.by, found.reason) == ("pid 1", "enough")
    store.clear_stop("5709abcd")
    assert store.stop_requested("5709abcd") is None
    with pytest.raises(JobNotFoundError):
        store.request_stop("deadbeef", by="me")


def test_new_ids_are_eight_hex_digits_and_differ() -> None:
    """Fresh ids are short, typeable, and not repeated."""
    ids = {new_job_id() for _ in range(200)}
    assert len(ids) == 200 and all(len(i) == 8 and int(i, 16) >= 0 for i in ids)


# ---- events ------------------------------------------------------------------------------


def test_every_event_has_the_versioned_keys_and_all_its_fields() -> None:
    """to_json carries v, job, t, event, message, order_id, server_id and every field
    of the event (null when not given), as one JSON line."""
    event = make_job_event(
        "a1b2c3d4", "rented", 1700000000.12345, "rented", order_id=7, server_id=9, price=0.1
    )
    document = json.loads(event.to_json_line())
    assert document["v"] == SCHEMA_VERSION == 1
    assert (document["job"], document["event"], document["t"]) == (
        "a1b2c3d4",
        "rented",
        1700000000.123,
    )
    assert (document["order_id"], document["server_id"], document["price"]) == (7, 9, 0.1)
    assert set(FIELDS["rented"]) <= set(document) and document["adopted"] is None


def test_an_unknown_event_or_field_is_refused() -> None:
    """The schema is closed where it is written: a new name must be added to FIELDS."""
    with pytest.raises(ValueError, match="unknown job event"):
        make_job_event("j", "exploded", 0.0, "")
    with pytest.raises(ValueError, match="has no field"):
        make_job_event("j", "rented", 0.0, "", colour="red")


def test_the_schema_lists_the_documented_events() -> None:
    """Every event the docs name is in the schema, and docs/jobs.md names every event."""
    docs = (Path(__file__).parents[2] / "docs" / "jobs.md").read_text()
    for name in EVENT_NAMES:
        assert f"`{name}`" in docs, name
    for name in (
        "job_started",
        "rented",
        "verify_failed",
        "running",
        "reconnecting",
        "limit_reached",
        "outbid",
        "recovering",
        "cancelled",
        "finished",
    ):
        assert name in EVENT_NAMES


# ---- the summary -------------------------------------------------------------------------


def result(**fields: object) -> JobResult:
    base: dict[str, object] = {
        "job_id": "a1b2c3d4",
        "name": "train",
        "exit_code": 0,
        "reason": "succeeded",
        "message": "",
        "command_exit_code": 0,
        "order_id": 12,
        "orders": (12,),
        "cancelled": True,
        "kept": False,
        "seconds": 192.4,
        "cost": 0.0000123,
        "spend": 0.0000112,
        "fees": 0.0000011,
        "currency": "bitcoin",
        "outputs": (),
        "events": (),
    }
    base.update(fields)
    return JobResult(**base)  # type: ignore[arg-type]


def test_the_summary_says_how_long_what_it_cost_and_why() -> None:
    """One line: the ending, the exit code, the time, spend plus fees, the order's fate."""
    assert summary_line(result()) == (
        "job a1b2c3d4 succeeded (exit 0) in 3 min; cost 0.00001230 BTC (spend 0.00001120 + "
        "fees 0.00000110); order 12 cancelled"
    )
    kept = summary_line(result(reason="max_spend", exit_code=124, cancelled=False, kept=True))
    assert kept.startswith("job a1b2c3d4 stopped at max_spend (exit 124) in 3 min")
    assert kept.endswith("order 12 kept running (`clore cancel 12`)")
    none = summary_line(result(reason="error", exit_code=1, order_id=None, orders=(), cost=None))
    assert none == "job a1b2c3d4 could not run (exit 1) in 3 min; nothing rented, no cost"


def test_the_summary_of_a_record_is_the_same_line() -> None:
    """A finished record gives the summary its result would."""
    done = record(
        "a1b2c3d4",
        state="done",
        reason="failed",
        exit_code=3,
        command_exit_code=3,
        orders=[12],
        order_id=12,
        cost=0.5,
        spent=0.4,
        fees=0.1,
        currency="USD-Blockchain",
        cancelled=True,
    )
    line = summary_line(done)
    assert line.startswith("job a1b2c3d4 failed (exit 3) in ")
    assert "cost 0.500 USD (spend 0.400 + fees 0.100); order 12 cancelled" in line
    assert os.sep not in line
