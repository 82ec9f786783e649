"""What ``clore run`` and ``clore jobs`` share: a job's events as progress lines, the
one-line summary, the command's output written as it arrives, and the jobs listing.

The library (``clore.jobs``) decides everything; this module only words it by the output
rules (docs/cli.md): durations as ``45 s``/``12 min``, amounts with their currency's
digits. ``Stream`` is the face of one running job: the command's stdout on stdout and its
stderr on stderr (``--json``: both on stderr, the events as JSON Lines on stdout), the
events as ``clore: ...`` lines on stderr that never start in the middle of the command's
own line, and a closed pipe (``clore run ... | head``) never stopping the job.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any, Final

import click

from clore.cli._context import EXIT_API, EXIT_INTERRUPTED, EXIT_NOT_FOUND, CliError, one_line
from clore.cli._format import amount, duration
from clore.cli._output import Column, Output

if TYPE_CHECKING:
    from clore.jobs import JobEvent, JobRecord, JobResult

__all__ = [
    "JOB_COLUMNS",
    "Stream",
    "command_text",
    "event_line",
    "interrupted",
    "job_error",
    "job_rows",
    "kept_line",
    "money",
    "record_doc",
    "size",
    "spec_doc",
    "summary",
]

#: How the summary says why a job ended (``clore.jobs.ENDINGS``' keys).
_WHY: Final[Mapping[str, str]] = {
    "succeeded": "succeeded",
    "failed": "failed",
    "max_spend": "stopped at its max spend",
    "max_time": "stopped at its max time",
    "idle": "stopped: the GPUs were idle",
    "stopped": "stopped on request",
    "interrupted": "interrupted",
    "connection_lost": "lost its connection",
    "order_lost": "lost its order",
    "error": "could not run",
    "declined": "was not confirmed",
}
#: The endings whose summary also gives the library's reason in words.
_SAY_WHY: Final = frozenset({"error", "connection_lost", "order_lost"})
#: Environment names whose values are never printed (as ``rent --dry-run`` hides them).
_SECRET_WORDS: Final = ("pass", "token", "secret", "key")


def money(value: float | None, currency: str | None, per: str | None = None) -> str:
    """``0.00001234 BTC`` (``/day`` with ``per``); ``—`` when unknown."""
    from clore.market import label

    if value is None:
        return "—"
    if not currency:
        return amount(value, "bitcoin")
    unit = f"{label(currency)}/{per}" if per else label(currency)
    return f"{amount(value, currency)} {unit}"


def size(count: float | None) -> str:
    """``512 B``, ``12 KB``, ``3.4 MB``, ``1.2 GB`` (powers of 1000)."""
    if count is None:
        return "—"
    value = float(count)
    if value < 999.5:
        return f"{value:.0f} B"
    units = ["KB", "MB", "GB", "TB"]
    value /= 1000
    while value >= 999.5 and len(units) > 1:
        value /= 1000
        units.pop(0)
    unit = units[0]
    return f"{value:.1f} {unit}" if value < 9.95 else f"{value:.0f} {unit}"


def command_text(command: str | None, width: int = 60) -> str:
    """The command on one line, cut to ``width`` characters (``…`` when cut)."""
    text = one_line(command or "")
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _fields(event: JobEvent) -> Callable[[str], Any]:
    return event.get


def event_line(event: JobEvent) -> str | None:
    """The event as one progress line (without the ``clore:`` prefix); None for
    ``finished`` (the summary says it)."""
    f = _fields(event)
    name, order, server = event.event, event.order_id, event.server_id
    cur = f("currency")
    if name == "finished":
        return None
    if name == "job_started":
        verb = "resuming" if f("resumed") else "starting"
        return f"{verb} job {event.job} ({f('name')}): {command_text(f('command'))}"
    if name == "server_chosen":
        count = f("candidates")
        best = "the best match" if count is None else f"the best of {count} matching"
        text = f"server {server} is {best}, at {money(f('price'), cur, 'day')}" + (
            " (spot minimum)" if f("spot") else ""
        )
        return text + (f"; left out: {f('left_out')}" if f("left_out") else "")
    if name == "renting":
        how = "with a spot bid of" if f("spot") else "at"
        attempt = f("attempt") or 1
        again = f" (attempt {attempt})" if attempt > 1 else ""
        return f"renting server {server} {how} {money(f('price'), cur, 'day')}{again}"
    if name == "rented":
        if f("adopted"):
            return f"using your order {order} on server {server} (not rented by this job)"
        spot = " (spot)" if f("spot") else ""
        return f"rented server {server} as order {order} at {money(f('price'), cur, 'day')}{spot}"
    if name == "rent_skipped":
        return f"server {server} was not rented ({f('reason')}); trying the next one"
    if name == "ready":
        where = f" (ssh {f('host')}:{f('port')})" if f("host") else ""
        return f"order {order} is ready after {duration(f('seconds'))}{where}"
    if name == "verified":
        return f"order {order} passed verification ({f('verdict')})"
    if name == "verify_failed":
        failed = ", ".join(f("failed") or []) or f("verdict")
        if not f("cancelled"):
            return (
                f"order {order} failed {failed} past the free window; kept (only a failed "
                "GPU check cancels then)"
            )
        free = " inside the free window (no creation fee)" if f("in_window") else ""
        following = f("next_server_id")
        then = f"; trying server {following}" if following else ""
        return f"order {order} failed verification ({failed}): cancelled{free}{then}"
    if name == "uploading":
        restored = f("restored")
        carried = f" and {restored} checkpointed output file(s)" if restored else ""
        return f"uploading {_count(f('files'))} file(s), {size(f('bytes'))}{carried}"
    if name == "uploaded":
        return f"uploaded {size(f('bytes'))} in {duration(f('seconds'))}"
    if name == "setup_started":
        return "running the setup"
    if name == "running":
        attempt = f("attempt") or 1
        again = f" (attempt {attempt}: restarted from scratch)" if attempt > 1 else ""
        return f"running the command on order {order}{again}"
    if name == "reconnecting":
        return (
            f"connection lost ({one_line(str(f('error')))}); reconnecting for up to "
            f"{duration(f('budget'))}"
        )
    if name == "reconnected":
        return f"reconnected after {duration(f('seconds'))}; the output resumes"
    if name == "idle":
        return (
            f"the GPUs stayed under {_percent(f('threshold'))} for {duration(f('seconds'))}: "
            "stopping the job"
        )
    if name == "limit_reached":
        if f("limit") == "max_time":
            return (
                f"max time: the job reaches {duration(f('value'))} by the next check (at most "
                f"{duration(f('max'))}): stopping it"
            )
        return (
            f"max spend: spend plus fees reach {money(f('value'), cur)} by the next check "
            f"(at most {money(f('max'), cur)}): stopping the job"
        )
    if name == "outbid":
        top = f("winning_bid")
        highest = f" (highest bid {money(top, cur, 'day')})" if top is not None else ""
        return f"the spot bid of order {order} is not winning any more{highest}"
    if name == "order_lost":
        return f"order {order} was lost ({f('state')}: {one_line(str(f('reason')))})"
    if name == "recovering":
        carried = f("carried")
        note = f"; {carried} checkpointed output file(s) carried over" if carried else ""
        return (
            f"recovering ({one_line(str(f('reason')))}): renting another server, the job "
            f"restarts from scratch{note}"
        )
    if name == "checkpointed":
        return f"copied {_count(f('files'))} output(s), {size(f('bytes'))}, back for a recovery"
    if name == "stop_requested":
        if f("reason") == "interrupted":
            return "interrupted: stopping the command, then cancelling the order"
        return f"stop requested by {f('by')} ({one_line(str(f('reason')))})"
    if name == "downloading":
        return f"bringing back {', '.join(f('outputs') or [])}"
    if name == "downloaded":
        missing = f("missing") or []
        gone = f"; not on the machine: {', '.join(missing)}" if missing else ""
        return f"brought back {_count(f('files'))} output(s), {size(f('bytes'))}{gone}"
    if name == "cancelling":
        return f"cancelling order {order}"
    if name == "cancelled":
        return (
            f"order {order} cancelled: spend {money(f('spend'), cur)} + fees "
            f"{money(f('fees'), cur)}"
        )
    if name == "kept":
        return kept_line(order, f("ssh"))
    if name == "warning":
        return f"warning: {one_line(event.message)}"
    return one_line(event.message)


def _count(value: Any) -> str:
    """A count given as a number or as the list of what it counts."""
    if isinstance(value, list | tuple):
        return str(len(value))
    return "—" if value is None else str(value)


def _percent(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:g}%"


def kept_line(order_id: int | None, ssh: str | None) -> str:
    """How to reach a kept order and how to stop it."""
    plain = f" (or `{ssh}`)" if ssh else ""
    return (
        f"order {order_id} keeps running (and billing): reach it with `clore ssh {order_id}`"
        f"{plain}; stop it with `clore cancel {order_id}`"
    )


def summary(result: JobResult | JobRecord) -> str:
    """``job a1b2c3d4 succeeded (exit 0) in 3 min; cost 0.00001234 BTC (spend 0.00001100
    BTC + fees 0.00000134 BTC); order 12 cancelled``: how long, what it cost, why it ended."""
    from clore.jobs import JobRecord, JobResult

    if isinstance(result, JobRecord):
        result = JobResult.from_record(result)
    why = _WHY.get(result.reason, result.reason)
    if result.reason in _SAY_WHY and result.message:
        why += f" ({one_line(result.message)})"
    head = f"job {result.job_id} {why} (exit {result.exit_code}) in {duration(result.seconds)}"
    cur = result.currency
    if result.cost is None:
        cost = "cost unknown" if result.orders else "nothing rented, no cost"
    else:
        cost = (
            f"cost {money(result.cost, cur)} (spend {money(result.spend, cur)} + fees "
            f"{money(result.fees, cur)})"
        )
    order = result.order_id
    if order is None:
        tail = ""
    elif result.kept:
        tail = (
            f"; order {order} kept running (`clore ssh {order}`; `clore cancel {order}` stops it)"
        )
    elif result.cancelled:
        earlier = [o for o in result.orders if o != order]
        tail = (
            f"; orders {', '.join(str(o) for o in [*earlier, order])} cancelled"
            if earlier
            else f"; order {order} cancelled"
        )
    else:
        tail = f"; order {order} may still be running and billing (`clore cancel {order}`)"
    return f"{head}; {cost}{tail}"


def job_error(exc: BaseException) -> BaseException:
    """A ``clore.jobs.JobError`` as the CLI's one-line error (not found: exit 4)."""
    from clore.jobs import JobError, JobNotFoundError

    if isinstance(exc, JobNotFoundError):
        return CliError(str(exc), EXIT_NOT_FOUND)
    if isinstance(exc, JobError):
        return CliError(str(exc), EXIT_API)
    return exc


def _redacted_env(env: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: ("<redacted>" if any(w in str(k).lower() for w in _SECRET_WORDS) else v)
        for k, v in env.items()
    }


def spec_doc(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A ``JobSpec.to_json()`` safe to print (secret-looking env values hidden)."""
    shown = dict(spec)
    if isinstance(shown.get("env"), Mapping):
        shown["env"] = _redacted_env(shown["env"])
    return shown


def record_doc(record: JobRecord) -> dict[str, Any]:
    """A job's record as JSON (its spec's secret-looking env values hidden), plus
    ``derived``: the summary, whether its runner lives, its age."""
    import msgspec

    from clore.jobs import runner_alive

    doc: dict[str, Any] = msgspec.to_builtins(record)
    doc["spec"] = spec_doc(record.spec)
    doc["derived"] = {
        "summary": summary(record) if record.final else None,
        "runner_alive": None if record.final else runner_alive(record),
        "age_seconds": max(0.0, time.time() - record.created_at),
    }
    return doc


#: The columns of ``clore jobs`` (``--columns`` names them).
JOB_COLUMNS: Final = (
    Column("ID", priority=99),
    Column("Name", priority=50),
    Column("State", priority=90),
    Column("Order", "right", 80),
    Column("Exit", "right", 85),
    Column("Cost", "right", 70),
    Column("Age", "right", 60),
    Column("Reason", priority=20),
)


def job_rows(records: list[JobRecord], now: float) -> list[list[str]]:
    """One row per job: id, name, state, order, exit, cost, age, reason."""
    rows = []
    for r in records:
        state: str = r.state
        if not r.final and r.runner is not None:
            from clore.jobs import runner_alive

            if runner_alive(r) is False:
                state += " (no runner)"
        rows.append(
            [
                r.id,
                r.name,
                state,
                "—" if r.order_id is None else str(r.order_id),
                "—" if r.exit_code is None else str(r.exit_code),
                "—" if r.cost is None else money(r.cost, r.currency),
                duration(now - r.created_at),
                r.reason or "—",
            ]
        )
    return rows


class Stream:
    """Where one job's output and events go (see the module docstring)."""

    def __init__(self, out: Output, *, json_lines: bool) -> None:
        self.out = out
        self.json_lines = json_lines
        self._open = False  # the last bytes on the terminal did not end a line
        self._closed: set[str] = set()

    # ---- the command's output ------------------------------------------------------
    def stdout(self, data: bytes) -> None:
        """A chunk of the command's stdout (stderr with ``--json``)."""
        if self.json_lines:
            self._write("stderr", data)
        else:
            self._write("stdout", data)

    def stderr(self, data: bytes) -> None:
        """A chunk of the command's stderr."""
        self._write("stderr", data)

    def _stream(self, name: str) -> IO[str]:
        return sys.stdout if name == "stdout" else sys.stderr

    def _write(self, name: str, data: bytes) -> None:
        if not data or name in self._closed:
            return
        stream = self._stream(name)
        try:
            stream.flush()
            buffer = getattr(stream, "buffer", None)
            if buffer is not None:
                buffer.write(data)
                buffer.flush()
            else:
                stream.write(data.decode("utf-8", "replace"))
                stream.flush()
        except (OSError, ValueError):
            # A closed pipe (`| head`) must not stop the job: its output is kept locally.
            self._closed.add(name)
            return
        if name == "stderr" or self.out.tty:
            self._open = not data.endswith(b"\n")

    # ---- events ----------------------------------------------------------------------
    def event(self, event: JobEvent) -> None:
        """One event: a JSON line on stdout with ``--json``; a progress line on stderr
        (with ``--json`` only on a terminal or with ``-v``)."""
        if self.json_lines and "stdout" not in self._closed:
            try:
                self.out.json_line(event.to_json_line())
            except (OSError, ValueError):
                self._closed.add("stdout")
        if self.json_lines and not self.out.shows_progress:
            return
        line = event_line(event)
        if line is not None:
            self.note(f"clore: {line}")

    def note(self, text: str) -> None:
        """A line on stderr, on a line of its own."""
        if "stderr" in self._closed:
            return
        try:
            if self._open:
                click.echo("", file=sys.stderr)
            click.echo(text, file=sys.stderr)
        except (OSError, ValueError):
            self._closed.add("stderr")
        self._open = False


def interrupted(job_id: str) -> CliError:
    """A second Ctrl-C cut the job's ending short: exit 130, and whether its order may
    still be running (the record names it)."""
    from clore.jobs import JobError, get_job

    try:
        record = get_job(job_id)
    except JobError:
        return CliError("interrupted", EXIT_INTERRUPTED)
    if record.final or record.order_id is None:
        return CliError("interrupted", EXIT_INTERRUPTED)
    order = record.order_id
    return CliError(
        f"interrupted while job {record.id} was ending: order {order} may still be running "
        f"and billing; `clore jobs stop {record.id}` ends the job (`clore cancel {order}` "
        "the order)",
        EXIT_INTERRUPTED,
    )
