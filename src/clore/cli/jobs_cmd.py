"""``clore jobs``: the jobs ``clore run`` ran from this machine (``clore.jobs``' records).

``clore jobs`` (or ``jobs list``) lists them; ``jobs show JOB`` shows one; ``jobs logs
JOB`` prints its output (``--stderr`` the other stream, ``--follow`` until it ends);
``jobs stop JOB`` ends one from any terminal (its runner sees the request, or this
process ends it: the command stopped, the outputs brought back, the order cancelled);
``jobs resume JOB`` takes over a job whose runner died (a closed terminal, a crash, a
SIGKILL): it finds the job's order (never rents a second one), follows the command from
where the output stopped, and ends as ``clore run`` would, with its exit code. JOB is an
id or any unique prefix of one.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from clore.cli._context import EXIT_API, AppContext, CliError, pass_app
from clore.cli._group import Group
from clore.cli._output import json_lines_option, json_option, listing_options
from clore.cli._params import Number

if TYPE_CHECKING:
    from clore.jobs import JobRecord

__all__ = ["jobs"]

#: The listing's columns, as ``--columns`` names them (``_jobs.JOB_COLUMNS``).
COLUMN_NAMES: Final = ("id", "name", "state", "order", "exit", "cost", "age", "reason")
#: Seconds between reads of ``logs --follow`` (the local copy; over SSH when no runner
#: here appends to it).
_FOLLOW_LOCAL: Final = 0.3
_FOLLOW_REMOTE: Final = 2.0

_JOB_HELP: Final = "JOB is a job id or any unique prefix of one (`clore jobs` lists them)."


def _find(job_id: str) -> JobRecord:
    from clore.cli._jobs import job_error
    from clore.jobs import JobError, get_job

    try:
        return get_job(job_id)
    except JobError as exc:
        raise job_error(exc) from None


def _list(app: AppContext) -> None:
    from clore.cli._jobs import JOB_COLUMNS, job_rows, record_doc
    from clore.jobs import list_jobs

    records = list_jobs()
    now = time.time()
    out = app.out
    out.result(
        {"jobs": [record_doc(r) for r in records]},
        lambda: out.table(
            JOB_COLUMNS,
            job_rows(records, now),
            empty="No jobs yet (`clore run` starts one).",
        ),
    )


@click.group(cls=Group, invoke_without_command=True)
@listing_options(*COLUMN_NAMES)
@json_option
@pass_app
def jobs(app: AppContext) -> None:
    """The jobs `clore run` ran here: list them (the default), show one, print its
    output, stop one, resume one whose runner died.

    \b
    Examples:
      clore jobs                      # id, name, state, order, exit, cost, age
      clore jobs logs a1b2 --follow   # its stdout as it runs (--stderr: the other)
      clore jobs stop a1b2            # end it: the order is cancelled
      clore jobs resume a1b2          # after a crash: its order, never a second one
    """
    if click.get_current_context().invoked_subcommand is None:
        _list(app)


@jobs.command("list")
@listing_options(*COLUMN_NAMES)
@json_option
@pass_app
def list_cmd(app: AppContext) -> None:
    """List the jobs (oldest first): id, name, state, order, exit code, cost, age."""
    _list(app)


@jobs.command(epilog=_JOB_HELP)
@click.argument("job_id", metavar="JOB")
@json_option
@pass_app
def show(app: AppContext, /, job_id: str) -> None:
    """Show one job: its state, command, orders, cost, outputs and summary."""
    from clore.cli._format import duration, timestamp
    from clore.cli._jobs import command_text, money, record_doc, summary
    from clore.jobs import runner_alive

    record = _find(job_id)

    def human() -> None:
        state: str = record.state
        if not record.final:
            alive = runner_alive(record)
            state += {
                True: f" (runner: pid {record.pid})",
                False: " (no runner: `clore jobs resume` takes it over)",
                None: f" (runner on {record.host}, pid {record.pid})",
            }[alive]
        ended = record.ended_at
        took = (ended or time.time()) - record.created_at
        spec = record.spec
        pairs = [
            ("state", state),
            ("reason", record.reason or "—"),
            ("exit", "—" if record.exit_code is None else str(record.exit_code)),
            ("command", command_text(spec.get("command"), 70)),
            ("order", "—" if record.order_id is None else str(record.order_id)),
            ("orders", ", ".join(str(o) for o in record.orders) or "—"),
            ("server", "—" if record.server_id is None else str(record.server_id)),
            ("cost", money(record.cost, record.currency)),
            ("started", timestamp(record.created_at)),
            ("ended", "—" if ended is None else timestamp(ended)),
            ("took" if ended else "running for", duration(took)),
            ("outputs", ", ".join(record.outputs) or "—"),
            ("output dir", record.output_dir or "—"),
        ]
        if record.final:
            pairs.append(("summary", summary(record)))
        app.out.fields(pairs, title=f"job {record.id} ({record.name})")

    app.out.result(record_doc(record), human)


def _write(data: bytes) -> None:
    if not data:
        return
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:
        sys.stdout.write(data.decode("utf-8", "replace"))
        sys.stdout.flush()


@jobs.command(epilog=_JOB_HELP)
@click.argument("job_id", metavar="JOB")
@click.option("--stderr", "which", flag_value="stderr", help="The command's stderr instead.")
@click.option("--stdout", "which", flag_value="stdout", default=True, hidden=True)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
@json_option(
    help="Print {job, stream, offset, text} as one JSON document (with --follow: one "
    "object per chunk, JSON Lines)."
)
@pass_app
def logs(app: AppContext, /, job_id: str, which: str, follow: bool) -> None:
    """Print a job's output: the local copy, or the machine's while it runs with no
    runner here (over SSH). --follow prints what comes until the job ends."""
    from clore.cli._jobs import job_error
    from clore.jobs import JobError, get_job, job_logs, runner_alive

    record = _find(job_id)
    client = app.client(auth=False)
    offset = 0
    chunks: list[bytes] = []

    def emit(data: bytes, at: int) -> None:
        if not app.json:
            _write(data)
        elif follow:
            if data:
                line = {"job": record.id, "stream": which, "offset": at, "text": _text(data)}
                app.out.json_line(_compact(line))
        else:
            chunks.append(data)

    try:
        while True:
            data = job_logs(client, record.id, which, offset=offset)
            emit(data, offset)
            offset += len(data)
            if not follow or record.final:
                break
            local = runner_alive(record) is True
            time.sleep(_FOLLOW_LOCAL if local else _FOLLOW_REMOTE)
            record = get_job(record.id)
    except JobError as exc:
        raise job_error(exc) from None
    if app.json and not follow:
        app.out.json(
            {"job": record.id, "stream": which, "offset": 0, "text": _text(b"".join(chunks))}
        )


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _compact(document: dict[str, object]) -> str:
    import msgspec

    return msgspec.json.encode(document).decode()


@jobs.command(epilog=_JOB_HELP)
@click.argument("job_id", metavar="JOB")
@click.option(
    "--wait",
    type=Number(min=0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="How long the job's runner may take to stop it.",
)
@click.option(
    "--force",
    is_flag=True,
    help="End it from here when its runner does not (or runs on another machine).",
)
@json_option
@pass_app
def stop(app: AppContext, /, job_id: str, wait: float, force: bool) -> None:
    """End a job: its runner stops the command, brings the outputs back and cancels the
    order; with no runner alive, this command does it."""
    from clore.cli._jobs import Stream, job_error, record_doc, summary
    from clore.jobs import JobError, stop_job

    record = _find(job_id)
    if record.final:
        app.out.result(
            record_doc(record), lambda: app.out.echo(f"already ended: {summary(record)}")
        )
        return
    stream = Stream(app.out, json_lines=False)
    try:
        final = stop_job(
            app.client(),
            record.id,
            reason="`clore jobs stop`",
            wait=wait,
            force=force,
            on_event=stream.event,
        )
    except JobError as exc:
        raise job_error(exc) from None
    if not final.final:
        raise CliError(f"job {final.id} did not end (state {final.state})", EXIT_API)
    app.out.result(record_doc(final), lambda: app.out.echo(summary(final)))


@jobs.command(epilog=_JOB_HELP)
@click.argument("job_id", metavar="JOB")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where outputs come back (default: where the job said).",
)
@json_lines_option
@pass_app
def resume(app: AppContext, /, job_id: str, output_dir: Path | None) -> None:
    """Take over a job whose runner died: its order found (never a second rental), the
    command followed from where its output stopped, then the job ends as `clore run`'s
    would (outputs back, order cancelled) with the command's exit code."""
    from clore.cli._jobs import Stream, interrupted, job_error, summary
    from clore.jobs import JobError, resume_job

    record = _find(job_id)
    if record.final:
        app.out.info(f"job {record.id} had already ended")
    stream = Stream(app.out, json_lines=app.json)
    try:
        result = resume_job(
            app.client(),
            record.id,
            on_event=stream.event,
            on_stdout=stream.stdout,
            on_stderr=stream.stderr,
            output_dir=output_dir,
        )
    except KeyboardInterrupt:
        raise interrupted(record.id) from None
    except JobError as exc:
        raise job_error(exc) from None
    stream.note(summary(result))
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)
