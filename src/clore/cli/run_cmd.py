"""``clore run [TASK_FILE] [FILTER]... [OPTIONS] [-- COMMAND...]``: a job on a rented GPU,
start to finish (``clore.jobs.run_job``), its output streamed live, its exit code the
command's.

The task file (``clore.jobs.task``) and the options are laid together by
``clore.jobs.resolve`` (the options win) and checked before anything is sent: a bad
field or option is one line naming it, exit 2. The first word is the task file when it
names a file (or ends in ``.yaml``/``.yml``); the other words are filters, as for
``clore rent --cheapest``. Everything after ``--`` is the command (one word: a shell
line; several: the words, each kept whole).

Renting spends money, so the job is confirmed first: without ``--yes`` on a terminal the
job asks once, through ``run_job``'s ``confirm`` hook just before its first
``create_order``, naming the exact server it is about to rent, its price and the limits
(no: exit 1, nothing rented); with no terminal to ask on, ``--yes`` is required (exit 2
before any request). ``--dry-run`` shows what it would rent now and rents nothing.

While it runs: the command's stdout on stdout, its stderr on stderr, each step of the job
as a ``clore: ...`` line on stderr; ``--json``: the events as JSON Lines on stdout (the
schema v1 of docs/jobs.md) and the command's stdout and stderr both on stderr. Always the
one-line summary at the end (how long, spend plus fees, why it ended). Ctrl-C ends the
job: the command stopped, the order cancelled, exit 130.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from clore.cli._context import EXIT_NOT_FOUND, EXIT_USAGE, CliError, pass_app
from clore.cli._output import json_lines_option
from clore.cli._params import Id, Integer, Number
from clore.cli._quality import floors_from, quality_options

if TYPE_CHECKING:
    from clore import Order, Server
    from clore.cli._context import AppContext
    from clore.jobs import JobSpec, Proposal, RunOptions
    from clore.rentals.choice import Floors

__all__ = ["run"]

_COMMAND_KEY: Final = "clore.cli.run_cmd.command"
_TASK_SUFFIXES: Final = (".yaml", ".yml")

#: The exit codes of ``clore run`` (and ``clore jobs resume``); a test checks them against
#: ``clore.jobs.EXIT_CODES``.
EXIT_EPILOG: Final = """\b
Exit codes: the command's own (0 when it succeeded); 124 stopped by --max-spend,
--max-time or --idle; 130 interrupted (Ctrl-C); 143 stopped (`clore jobs stop`);
255 the connection was lost for good; 75 the order was lost (ended, outbid) and not
recovered; 1 the job could not run (no server matched, renting failed) or was not
confirmed; 2 a bad task file or option (nothing rented). Reference: docs/jobs.md.
"""


class _RunCommand(click.Command):
    """A command whose words after ``--`` are the job's command, not filters."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            ctx.meta[_COMMAND_KEY] = tuple(args[at + 1 :])
            args = args[:at]
        return super().parse_args(ctx, args)


def _env(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str] | None:
    env: dict[str, str] = {}
    for word in values:
        name, sep, value = word.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {word!r}")
        env[name.strip()] = value
    return env or None


def _is_task_file(word: str) -> bool:
    return word.lower().endswith(_TASK_SUFFIXES) or Path(word).is_file()


def _command(words: tuple[str, ...] | None) -> str | tuple[str, ...] | None:
    """``-- COMMAND``: one word is a shell line; several are joined, each kept whole."""
    if words is None:
        return None
    return words[0] if len(words) == 1 else words


@dataclass(frozen=True)
class _Plan:
    """What the job would rent now: for the confirmation and ``--dry-run``."""

    what: str
    price: str
    kind: str
    note: str
    currency: str
    server: Server | None = None
    order: Order | None = None
    price_per_day: float | None = None
    candidates: int = 0


def _plan(app: AppContext, spec: JobSpec, floors: Floors) -> _Plan:
    """The server the job would rent now (or the order it would use); exit 4 when nothing
    matches. The job itself chooses again when it starts (the market moves)."""
    from clore.cli._format import day_and_hour, gpu_text
    from clore.cli._marketdata import find_server, load
    from clore.market import PriceContext, parse_filters, server_price
    from clore.rentals.choice import choose

    currency = spec.currency or "bitcoin"
    if spec.order_id is not None:
        order = app.api().get_order(spec.order_id)
        price = float(order.price)
        return _Plan(
            what=f"your order {order.id} on server {order.si} ({gpu_text(order)})",
            price=day_and_hour(price, order.currency),
            kind="your order: nothing new is rented",
            note="not rented by the job, yet cancelled when it ends (--keep leaves it running)",
            currency=order.currency,
            order=order,
            price_per_day=price,
            candidates=1,
        )
    data = load(app, refresh=True)
    ctx = PriceContext(currency, data.rates)
    if spec.server_id is not None:
        servers = [find_server(data, spec.server_id)]
        note = "the server you named"
    else:
        choice = choose(
            data.servers, parse_filters(spec.filters), ctx, spot=spec.spot, floors=floors
        )
        servers = list(choice.candidates)
        if not servers:
            left = choice.describe_left_out()
            words = " ".join(spec.filters) or "(no filters)"
            raise CliError(
                f"no available server matches {words}" + (f" ({left})" if left else ""),
                EXIT_NOT_FOUND,
            )
        note = (
            f"the best of {len(servers)} matching now; the job takes the next one if it is "
            "rented meanwhile"
        )
    best = servers[0]
    day = server_price(best, ctx, spot=spec.spot)
    if spec.spot:
        kind = f"spot bid of {spec.bid}/day" if spec.bid else "spot bid at the server's minimum"
    else:
        kind = "on-demand"
    return _Plan(
        what=f"server {best.id}: {gpu_text(best)}, {best.specs.gpuram} GB each, "
        f"{best.country or '?'}",
        price=day_and_hour(day, currency),
        kind=kind,
        note=note,
        currency=currency,
        server=best,
        price_per_day=day,
        candidates=len(servers),
    )


def _limits_text(spec: JobSpec) -> str:
    from clore.cli._format import duration
    from clore.cli._jobs import money
    from clore.market import parse_amount

    parts = []
    if spec.max_spend is not None:
        cap = parse_amount(spec.max_spend)
        shown = (
            money(cap.value, cap.currency) if cap.currency else f"{cap.value:g} (order currency)"
        )
        parts.append(f"max spend {shown} (spend plus fees)")
    if spec.max_time is not None:
        parts.append(f"max time {duration(spec.max_time)}")
    if spec.idle is not None:
        parts.append(f"idle stop after {duration(spec.idle)} under {spec.idle_threshold:g}% GPU")
    if not parts:
        return "none: it runs until the command ends (--max-spend, --max-time cap it)"
    return ", ".join(parts)


def _show_plan(app: AppContext, spec: JobSpec, plan: _Plan) -> None:
    from clore.cli._jobs import command_text

    out = app.out
    out.info(f"Run job {spec.name}: {command_text(spec.command)}")
    out.info(f"  server   {plan.what}")
    out.info(f"           ({plan.note})")
    out.info(f"  price    {plan.price} ({plan.kind})")
    out.info(f"  limits   {_limits_text(spec)}")
    ending = (
        "left running (--keep)" if spec.keep else "cancelled when the job ends, however it ends"
    )
    out.info(f"  order    {ending}")
    if spec.verify and spec.order_id is None:
        out.info(
            "  verify   once ready; a machine that fails inside the free 10 minutes is "
            "cancelled at no creation fee and the next one rented"
        )


def _proposed(proposal: Proposal, spec: JobSpec) -> _Plan:
    """What the job is about to rent, as the question shows it."""
    from clore.cli._format import day_and_hour, gpu_text

    currency = proposal.currency
    price = day_and_hour(proposal.price_per_day, currency)
    order = proposal.order
    if order is not None:
        return _Plan(
            what=f"your order {order.id} on server {order.si} ({gpu_text(order)})",
            price=price,
            kind="your order: nothing new is rented",
            note="not rented by the job, yet cancelled when it ends (--keep leaves it running)",
            currency=currency,
            order=order,
            price_per_day=proposal.price_per_day,
            candidates=1,
        )
    server = proposal.server
    if server is None:
        what = f"server {proposal.server_id}"
    else:
        what = (
            f"server {server.id}: {gpu_text(server)}, {server.specs.gpuram} GB each, "
            f"{server.country or '?'}"
        )
    if spec.server_id is not None:
        note = "the server you named"
    elif proposal.candidates > 1:
        note = (
            f"the best of {proposal.candidates} matching; if it is taken before the order is "
            "made, the next one is rented without asking again"
        )
    else:
        note = "the only one matching"
    if proposal.spot:
        kind = "spot bid" + (f" of {spec.bid}/day" if spec.bid else " at the server's minimum")
    else:
        kind = "on-demand"
    return _Plan(
        what=what,
        price=price,
        kind=kind,
        note=note,
        currency=currency,
        server=server,
        price_per_day=proposal.price_per_day,
        candidates=proposal.candidates,
    )


def _asker(app: AppContext, spec: JobSpec) -> Callable[[Proposal], bool]:
    """``run_job``'s ``confirm``: what the job is about to rent, and one question (Ctrl-C
    there is a no)."""

    def confirm(proposal: Proposal) -> bool:
        import signal
        import threading

        _show_plan(app, spec, _proposed(proposal, spec))
        # run_job makes Ctrl-C the job's interrupt; at the question it is a plain "no".
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.default_int_handler) if main else None
        try:
            return click.confirm("Proceed?", default=False, err=True)
        except click.Abort:
            click.echo(err=True)
            return False
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)

    return confirm


def _dry_run(app: AppContext, spec: JobSpec, floors: Floors, output_dir: Path | None) -> None:
    from clore.cli._format import order_doc, server_doc
    from clore.cli._jobs import size, spec_doc
    from clore.jobs import select_files
    from clore.market import PriceContext

    plan = _plan(app, spec, floors)
    selection = None
    if spec.workdir is not None:
        selection = select_files(Path(spec.workdir), spec.excludes)
    where = output_dir or (Path(spec.workdir) if spec.workdir is not None else Path.cwd())
    upload = None
    if selection is not None:
        upload = {
            "root": str(selection.root),
            "files": len(selection.files),
            "bytes": selection.total_bytes,
            "excluded": selection.excluded,
        }
    document = {
        "dry_run": True,
        "job": spec_doc(spec.to_json()),
        "server": None
        if plan.server is None
        else server_doc(plan.server, PriceContext(plan.currency, None)),
        "order": None if plan.order is None else order_doc(plan.order, app.server_time()),
        "price_per_day": plan.price_per_day,
        "currency": plan.currency,
        "candidates": plan.candidates,
        "upload": upload,
        "output_dir": str(where.absolute()),
    }

    def human() -> None:
        _show_plan(app, spec, plan)
        out = app.out
        if selection is not None:
            out.info(
                f"  upload   {len(selection.files)} file(s), {size(selection.total_bytes)} "
                f"from {selection.root}"
                + (f" ({selection.excluded} excluded)" if selection.excluded else "")
            )
        else:
            out.info("  upload   nothing (no workdir)")
        if spec.outputs:
            out.info(f"  outputs  {', '.join(spec.outputs)} into {where.absolute()}")
        out.info("dry run: nothing was rented")

    app.out.result(document, human)


def _resolve(task: str | None, filters: tuple[str, ...], opts: dict[str, Any]) -> JobSpec:
    from clore.jobs import resolve

    ports = opts["ports"]
    return resolve(
        task,
        command=_command(click.get_current_context().meta.get(_COMMAND_KEY)),
        filters=filters or None,
        name=opts["name"],
        workdir=opts["workdir"],
        server_id=opts["server_id"],
        order_id=opts["order_id"],
        gpu=opts["gpu"],
        gpus=opts["gpus"],
        gpuram=opts["gpuram"],
        price=opts["price"],
        spot=opts["spot"],
        bid=opts["bid"],
        max_bid=opts["max_bid"],
        image=opts["image"],
        ports=None if ports is None else (ports,),
        currency=opts["currency"],
        env=opts["env"],
        max_spend=opts["max_spend"],
        max_time=opts["max_time"],
        idle=opts["idle"],
        idle_threshold=opts["idle_threshold"],
        verify=False if opts["no_verify"] else None,
        keep=True if opts["keep"] else None,
        recover=True if opts["recover"] else None,
        outputs=opts["outputs"] or None,
        excludes=opts["excludes"] or None,
    )


def _ssh_key(value: str | None) -> Path | None:
    """``--ssh-key FILE``: a public key file (its ``.pub`` when given the private one)."""
    if value is None:
        return None
    from clore.cli._orderopts import OrderSpec

    checked = OrderSpec.from_options(
        image="-",
        ports=None,
        ssh_key=value,
        ssh_password=None,
        env=None,
        command=None,
        jupyter_token=None,
    )
    if checked.ssh_key_path is None:
        raise CliError("--ssh-key: give a public key file (.pub) for clore run", EXIT_USAGE)
    return checked.ssh_key_path


def run_options(opts: dict[str, Any], floors: Floors | None) -> RunOptions:
    """The runner's knobs the options set."""
    from clore.jobs import RunOptions

    return RunOptions(
        tries=opts["tries"],
        verify_tries=opts["verify_tries"],
        wait_timeout=opts["timeout"],
        floors=floors,
        ssh_key=_ssh_key(opts["ssh_key"]),
    )


def _run(
    app: AppContext,
    spec: JobSpec,
    options: RunOptions,
    output_dir: Path | None,
    confirm: Callable[[Proposal], bool] | None,
) -> int:
    from clore.cli._jobs import Stream, interrupted, job_error, summary
    from clore.jobs import JobError, run_job
    from clore.jobs.records import new_job_id

    stream = Stream(app.out, json_lines=app.json)
    job_id = new_job_id()
    try:
        result = run_job(
            app.client(),
            spec,
            on_event=stream.event,
            on_stdout=stream.stdout,
            on_stderr=stream.stderr,
            output_dir=output_dir,
            options=options,
            job_id=job_id,
            confirm=confirm,
        )
    except KeyboardInterrupt:
        raise interrupted(job_id) from None
    except JobError as exc:
        raise job_error(exc) from None
    if result.reason == "declined":
        raise CliError("not confirmed; nothing was rented (--yes skips the question)", 1)
    stream.note(summary(result))
    return result.exit_code


@click.command(cls=_RunCommand, epilog=EXIT_EPILOG)
@click.argument("words", nargs=-1, metavar="[TASK_FILE] [FILTER]... [-- COMMAND...]")
@click.option("--order", "order_id", type=Id(), help="Run on this order of yours (no rental).")
@click.option("--server", "server_id", type=Id(), help="Rent this server, not the best match.")
@click.option("--gpu", metavar="MODEL", help="GPU model (exact, as gpu= of the filters).")
@click.option("--gpus", type=Integer(1, 1024), help="At least this many GPUs.")
@click.option(
    "--gpuram", type=Number(min=0, min_open=True), metavar="GB", help="GB per GPU, at least."
)
@click.option("--price", metavar="PRICE", help="Price cap per day (2usd, 0.0001btc, 0.1usd/h).")
@click.option(
    "--spot/--on-demand",
    "spot",
    default=None,
    help="A spot bid instead of an on-demand order (default: the task file's; on-demand).",
)
@click.option("--bid", metavar="PRICE", help="Spot bid per day, implies --spot (0.00004btc).")
@click.option("--max-bid", metavar="PRICE", help="With --recover: the highest spot bid to pay.")
@click.option("--image", help="Docker image (default: the task file's, else Ubuntu with SSH).")
@click.option(
    "--ports",
    metavar="PORT:PROTO,...",
    help="Ports to expose besides 22:tcp (8888:http,6006:tcp).",
)
@click.option(
    "--currency",
    "-c",
    metavar="C",
    help="Currency to pay with: btc, clore or usd (default: the task file's, else btc).",
)
@quality_options("Choosing a server")
@click.option(
    "--tries",
    type=Integer(1, 10),
    default=5,
    show_default=True,
    help="Servers to try when one is rented meanwhile.",
)
@click.option(
    "--verify-tries",
    type=Integer(1, 10),
    default=3,
    show_default=True,
    help="Orders to try when machines fail verification.",
)
@click.option(
    "--no-verify",
    is_flag=True,
    help="Do not check the machine against its listing before running.",
)
@click.option(
    "--ssh-key",
    metavar="FILE",
    help="Public key file sent with the order (default $CLORE_SSH_KEY, else ~/.ssh/id_*.pub).",
)
@click.option(
    "--timeout",
    type=Number(min=1),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the machine to be reachable.",
)
@click.option(
    "--max-spend",
    metavar="AMOUNT",
    help="End the job before spend plus fees pass AMOUNT (0.0001btc, 2usd).",
)
@click.option("--max-time", metavar="DURATION", help="End the job after this long (90m, 2h, 1d).")
@click.option("--idle", metavar="DURATION", help="End the job when the GPUs idle this long (15m).")
@click.option(
    "--idle-threshold",
    type=Number(min=0, max=100, min_open=True),
    metavar="PERCENT",
    help="GPU utilization under which --idle counts (default 10).",
)
@click.option(
    "--recover",
    is_flag=True,
    help="When the order is lost (outbid, ended), rent the next good server and restart "
    "the job there, from scratch unless it checkpoints into its outputs.",
)
@click.option("--keep", is_flag=True, help="Leave the order running at the end.")
@click.option("--name", help="The job's name (default: the task file's).")
@click.option("--workdir", metavar="DIR", help="Directory to upload (default: the task file's).")
@click.option(
    "--exclude",
    "excludes",
    multiple=True,
    metavar="PATTERN",
    help="Leave these out of the upload (.gitignore patterns; repeatable).",
)
@click.option(
    "--output",
    "outputs",
    multiple=True,
    metavar="PATH",
    help="Bring this path back (relative to the workdir; repeatable).",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where outputs come back (default: the workdir, else here).",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    callback=_env,
    metavar="NAME=VALUE",
    help="Environment variable for the command (repeatable; over the task file's).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be rented and run; rent nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_lines_option
@pass_app
def run(app: AppContext, /, words: tuple[str, ...], **opts: Any) -> None:
    """Run a command on a rented GPU: rent, upload, run, bring the outputs back, cancel.

    TASK_FILE is YAML (resources, workdir, env, setup, run, outputs, limits; see
    examples/train.yaml); options override it, and without one everything comes from
    the options, the FILTERs and -- COMMAND. The job's stdout and stderr stream live;
    the exit code is the command's.

    \b
    Examples:
      clore run examples/train.yaml --yes
      clore run gpu=4090 gpus=1 --max-spend 2usd --yes -- python train.py --epochs 3
      clore run task.yaml --bid 0.00004btc --recover --max-time 2h
      clore run task.yaml --order 1234 --keep        # on a rental you have; leave it
      clore --json run task.yaml --yes > events.jsonl
    """
    task: str | None = None
    filters = words
    if words and _is_task_file(words[0]):
        task, filters = words[0], words[1:]
    spec = _resolve(task, filters, opts)
    chooses = spec.order_id is None and spec.server_id is None
    floors = floors_from(
        opts, applies=chooses, what="choosing a server (not with --order/--server)"
    )
    options = run_options(opts, floors)
    output_dir: Path | None = opts["output_dir"]
    if opts["dry_run"]:
        _dry_run(app, spec, floors, output_dir)
        return
    confirm = None
    if not opts["yes"]:
        if not sys.stdin.isatty():
            raise CliError(
                "clore run rents a server (it spends money): give --yes to run unattended "
                "(--dry-run shows what it would rent)",
                EXIT_USAGE,
            )
        confirm = _asker(app, spec)
    code = _run(app, spec, options, output_dir, confirm)
    if code:
        raise click.exceptions.Exit(code)
