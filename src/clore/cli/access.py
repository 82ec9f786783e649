"""Reaching a rented container: ``ssh``, ``ssh-config``, ``open`` and ``copy``.

Each resolves the order's public endpoint (``pub_cluster`` host, the public port mapped
from container port 22, ``http_pub``) through the SDK, then hands over to ``ssh``,
``rsync``/``scp`` or the browser. ``--print`` (and ``--json``) show the command instead.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from clore.cli._context import AppContext, CliError, pass_app
from clore.cli._format import gpu_text, timestamp
from clore.cli._output import json_option
from clore.cli._params import Id, parse_id

if TYPE_CHECKING:
    from clore import Order

__all__ = ["copy", "open_url", "ssh", "ssh_config"]


def run_program(argv: Sequence[str]) -> None:
    """Replace this process with ``argv`` (ssh, rsync, scp); exit 1 if it is not installed."""
    if shutil.which(argv[0]) is None:
        raise CliError(f"{argv[0]} is not installed (or not on PATH)", 1)
    os.execvp(argv[0], list(argv))


def _ready_order(app: AppContext, order_id: int) -> tuple[Order, str, int]:
    order = app.api().get_order(order_id)
    if order.expired:
        raise CliError(f"order {order_id} has ended", 1)
    endpoint = order.ssh_endpoint
    if endpoint is None:
        raise CliError(
            f"order {order_id} has no SSH endpoint yet (provisioning, or port 22 not exposed); "
            f"`clore order {order_id}` shows its state",
            1,
        )
    return order, endpoint[0], endpoint[1]


def _ssh_options(host: str, identity: str | None) -> list[str]:
    """ssh options for ``host``: the private half of the key ``rent`` sends by default
    (``~/.ssh`` under $HOME; ssh itself looks in the passwd home), and for a loopback
    host — a sandbox order, whose port changes with every order and whose host key with
    every sandbox — no host-key check and no known_hosts entry."""
    options: list[str] = []
    if identity is None:
        from clore.rentals import DEFAULT_KEY_NAMES

        ssh_dir = Path.home() / ".ssh"
        private = [ssh_dir / name.removesuffix(".pub") for name in DEFAULT_KEY_NAMES]
        found = next((p for p in private if p.is_file() and p.with_suffix(".pub").is_file()), None)
        if found is not None:
            options += ["-i", str(found)]
    else:
        options += ["-i", identity]
    if host in ("127.0.0.1", "localhost", "::1") or host.startswith("127."):
        options += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        options += ["-o", "LogLevel=ERROR"]
    return options


def _show(app: AppContext, argv: list[str], **extra: object) -> None:
    app.out.result({"argv": argv, **extra}, lambda: app.out.echo(shlex.join(argv)))


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("order_id", type=Id(), metavar="ORDER")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- CMD...]")
@click.option("--user", default="root", show_default=True, help="Remote user.")
@click.option(
    "-i", "--identity", type=click.Path(dir_okay=False), help="Private key file for ssh -i."
)
@click.option("--print", "print_only", is_flag=True, help="Print the ssh command; do not run it.")
@json_option
@pass_app
def ssh(
    app: AppContext,
    order_id: int,
    command: tuple[str, ...],
    user: str,
    identity: str | None,
    print_only: bool,
) -> None:
    """Open an SSH session to ORDER, or run CMD there (after --).

    Example: clore ssh 1234 -- nvidia-smi
    """
    _, host, port = _ready_order(app, order_id)
    argv = ["ssh", "-p", str(port), *_ssh_options(host, identity)]
    argv += [f"{user}@{host}", *command]
    if print_only or app.out.json_mode:
        _show(app, argv, host=host, port=port, user=user)
        return
    run_program(argv)


def _default_config_path() -> Path:
    return Path.home() / ".ssh" / "clore_config"


@click.command("ssh-config")
@click.option("--write", is_flag=True, help="Write the entries to the Include file.")
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Include file to write (default ~/.ssh/clore_config).",
)
@click.option("--user", default="root", show_default=True, help="Remote user.")
@json_option
@pass_app
def ssh_config(app: AppContext, write: bool, path: Path | None, user: str) -> None:
    """Host clore-<id> entries for your active orders (ssh clore-1234 then just works).

    Without --write the entries are printed. With --write they replace the Include file;
    add `Include ~/.ssh/clore_config` at the top of ~/.ssh/config once.
    """
    found = app.api().my_orders(include_completed=False)
    hosts = []
    lines = [f"# Written by `clore ssh-config` at {timestamp(app.clock.time())}; rerun to refresh."]
    for order in sorted(found, key=lambda o: o.id):
        endpoint = order.ssh_endpoint
        if order.expired or endpoint is None:
            continue
        alias = f"clore-{order.id}"
        hosts.append(
            {
                "alias": alias,
                "host": endpoint[0],
                "port": endpoint[1],
                "user": user,
                "order_id": order.id,
                "server_id": order.si,
            }
        )
        lines += [
            "",
            f"# order {order.id}, server {order.si}, {gpu_text(order)}",
            f"Host {alias}",
            f"    HostName {endpoint[0]}",
            f"    Port {endpoint[1]}",
            f"    User {user}",
        ]
    text = "\n".join(lines) + "\n"
    target = path or _default_config_path()
    if write:
        if not target.parent.exists():
            # ssh refuses keys and configs in a directory others can write: keep it private.
            target.parent.mkdir(mode=0o700, parents=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600)
        os.replace(tmp, target)
        app.out.info(f"wrote {len(hosts)} host(s) to {target}")
        main_config = Path.home() / ".ssh" / "config"
        include = f"Include {target}"
        existing = main_config.read_text(encoding="utf-8") if main_config.is_file() else ""
        if str(target) not in existing and "clore_config" not in existing:
            app.out.info(f"add this line at the top of {main_config}: {include}")
    document = {"path": str(target) if write else None, "hosts": hosts}
    app.out.result(document, lambda: None if write else app.out.echo(text.rstrip("\n")))


@click.command("open")
@click.argument("order_id", type=Id(), metavar="ORDER")
@click.option(
    "--browser/--no-browser",
    default=None,
    help="Open the URL in a browser (default: only when stdout is a terminal).",
)
@json_option
@pass_app
def open_url(app: AppContext, order_id: int, browser: bool | None) -> None:
    """Print ORDER's HTTP URL (the forwarded http port) and open it in a browser."""
    order = app.api().get_order(order_id)
    url = order.http_url
    if not url:
        raise CliError(f"order {order_id} has no HTTP URL (no http port, or provisioning)", 1)
    app.out.result({"order_id": order_id, "url": url}, lambda: app.out.echo(url))
    if browser or (browser is None and app.out.tty and not app.out.json_mode):
        import webbrowser

        webbrowser.open(url)


def _split(spec: str) -> tuple[int | None, str]:
    head, sep, tail = spec.partition(":")
    # Digits of any script mark the order's side; only ASCII ones spell its id.
    if sep and head.isdigit():
        return parse_id(head, "ORDER"), tail or "."
    return None, spec


@click.command()
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@click.option("-r", "--recursive", is_flag=True, help="Copy directories (scp -r).")
@click.option(
    "--tool",
    type=click.Choice(["auto", "rsync", "scp"]),
    default="auto",
    show_default=True,
    help="auto uses rsync when installed, else scp.",
)
@click.option("--user", default="root", show_default=True, help="Remote user.")
@click.option("--print", "print_only", is_flag=True, help="Print the command; do not run it.")
@json_option
@pass_app
def copy(
    app: AppContext,
    source: str,
    destination: str,
    recursive: bool,
    tool: str,
    user: str,
    print_only: bool,
) -> None:
    """Copy files to or from an order: one of SRC/DST is ORDER:path.

    \b
    Examples:
      clore copy ./data 1234:/workspace/data -r
      clore copy 1234:/workspace/out.tar.gz .
    """
    src_order, src_path = _split(source)
    dst_order, dst_path = _split(destination)
    if (src_order is None) == (dst_order is None):
        raise CliError("exactly one of SRC and DST must be ORDER:path (e.g. 1234:/root)", 2)
    order_id = src_order if src_order is not None else dst_order
    assert order_id is not None
    _, host, port = _ready_order(app, order_id)
    remote = f"{user}@{host}:"
    src = remote + src_path if src_order is not None else src_path
    dst = remote + dst_path if dst_order is not None else dst_path
    chosen = tool
    if chosen == "auto":
        chosen = "rsync" if shutil.which("rsync") else "scp"
    options = _ssh_options(host, None)
    if chosen == "rsync":
        # --progress, not --info=progress2: the rsync 2.6.9 and openrsync that macOS ships
        # know no --info.
        shell = shlex.join(["ssh", "-p", str(port), *options])
        argv = ["rsync", "-az", "--partial", "--progress", "-e", shell, src, dst]
    else:
        argv = ["scp", "-P", str(port), *options, *(["-r"] if recursive else []), src, dst]
    if print_only or app.out.json_mode:
        _show(app, argv, host=host, port=port, user=user)
        return
    run_program(argv)
