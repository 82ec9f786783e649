"""Reaching a rented container: ``ssh``, ``ssh-config``, ``open`` and ``copy``.

Each resolves the order's public endpoint (``pub_cluster`` host, the public port mapped
from container port 22, ``http_pub``) through the SDK, then hands over to ``ssh``,
``rsync``/``scp`` or the browser. ``--print`` (and ``--json``) show the command instead.

The key is the private half of the one the order was rented with (``rentals.RentalLogins``
remembers it), else of the default key. Host keys: each order has its own known-hosts
file (``rentals.known_hosts_path``) with ``StrictHostKeyChecking accept-new``, so a
host:port an earlier order used does not trip a "host key changed" warning; a loopback
host (a sandbox order) is not checked at all. ``ssh --wait`` waits for the order first;
``ssh -i KEY`` checks that KEY is a file before anything is sent (exit 2).

``open`` opens the order's HTTP URL logged in when a Jupyter token was remembered at rent
time (``rentals.RentalLogins``): the browser gets ``URL/?token=TOKEN``, as Jupyter takes
it. The token is printed only when asked for (``--with-token``: then the URL that logs in
is what the command prints); otherwise the plain URL is printed.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from clore.cli._automation import seconds_option
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


def _ready_order(
    app: AppContext, order_id: int, *, wait: bool = False, timeout: float = 600.0
) -> tuple[Order, str, int]:
    order = _wait(app, order_id, timeout) if wait else app.api().get_order(order_id)
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


def _wait(app: AppContext, order_id: int, timeout: float) -> Order:
    """``--wait``: until the order is ready; stopping says it is still billing."""
    from clore.cli._billing import billing_error

    try:
        with app.out.waiting(f"waiting for order {order_id} to be ready"):
            return app.api().wait_for_order(order_id, timeout=timeout)
    except BaseException as exc:
        raise billing_error(exc, order_id) from exc


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def identity_file(order: Order) -> Path | None:
    """The private key to log in to ``order`` with: the one beside the public key it was
    rented with (remembered), else the private half of the default key (``~/.ssh`` under
    $HOME; ssh itself looks in the passwd home); None when neither exists."""
    from clore.rentals.credentials import login_key

    return login_key(order)


def _identity(identity: str | None) -> str | None:
    """``-i KEY`` as given, expanded; exit 2 when it is not a file (nothing sent)."""
    if identity is None:
        return None
    path = Path(identity).expanduser()
    if not path.is_file():  # a directory is refused by click already
        raise CliError(f"-i: key file {identity} does not exist", 2)
    return str(path)


def _ssh_options(order: Order, host: str, identity: str | None) -> list[str]:
    """ssh options for ``order`` at ``host``: ``-i`` the key it was rented with (or
    ``identity``), and its own known-hosts file with accept-new; for a loopback host — a
    sandbox order, whose port changes with every order and whose host key with every
    sandbox — no host-key check and no known_hosts entry."""
    options: list[str] = []
    key = identity if identity is not None else identity_file(order)
    if key is not None:
        options += ["-i", str(key)]
    if _loopback(host):
        options += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        options += ["-o", "LogLevel=ERROR"]
    else:
        from clore.rentals import known_hosts_path

        options += ["-o", f"UserKnownHostsFile={known_hosts_path(order)}"]
        options += ["-o", "StrictHostKeyChecking=accept-new"]
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
@click.option(
    "--wait",
    is_flag=True,
    help="Wait until ORDER is ready first (resumes an interrupted `rent --wait`).",
)
@seconds_option("--timeout", 600.0, "How long --wait waits.")
@json_option
@pass_app
def ssh(
    app: AppContext,
    order_id: int,
    command: tuple[str, ...],
    user: str,
    identity: str | None,
    print_only: bool,
    wait: bool,
    timeout: float,
) -> None:
    """Open an SSH session to ORDER, or run CMD there (after --).

    Example: clore ssh 1234 -- nvidia-smi
    """
    identity = _identity(identity)
    order, host, port = _ready_order(app, order_id, wait=wait, timeout=timeout)
    argv = ["ssh", "-p", str(port), *_ssh_options(order, host, identity)]
    argv += [f"{user}@{host}", *command]
    if print_only or app.out.json_mode:
        _show(app, argv, host=host, port=port, user=user)
        return
    run_program(argv)


def _default_config_path() -> Path:
    return Path.home() / ".ssh" / "clore_config"


def _quoted(path: Path) -> str:
    """A path as ssh_config reads it (quoted when it holds a space)."""
    text = str(path)
    return f'"{text}"' if any(ch.isspace() for ch in text) else text


@click.command("ssh-config")
@click.option(
    "--write",
    is_flag=True,
    help="Write the entries to the Include file, and add the Include line to ~/.ssh/config "
    "when missing (once, with a backup).",
)
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

    Each entry names the key the order was rented with (IdentityFile) and the order's own
    known-hosts file with StrictHostKeyChecking accept-new. Without --write the entries
    are printed. With --write they replace the Include file, and `Include FILE` is put at
    the top of ~/.ssh/config if it is not there (the old file kept as config.clore-backup).
    """
    from clore.rentals import known_hosts_path

    found = app.api().my_orders(include_completed=False)
    hosts = []
    lines = [f"# Written by `clore ssh-config` at {timestamp(app.clock.time())}; rerun to refresh."]
    for order in sorted(found, key=lambda o: o.id):
        endpoint = order.ssh_endpoint
        if order.expired or endpoint is None:
            continue
        alias = f"clore-{order.id}"
        identity = identity_file(order)
        known = known_hosts_path(order)
        hosts.append(
            {
                "alias": alias,
                "host": endpoint[0],
                "port": endpoint[1],
                "user": user,
                "order_id": order.id,
                "server_id": order.si,
                "identity_file": None if identity is None else str(identity),
                "known_hosts": str(known),
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
        if identity is not None:
            lines.append(f"    IdentityFile {_quoted(identity)}")
        lines += [
            f"    UserKnownHostsFile {_quoted(known)}",
            "    StrictHostKeyChecking accept-new",
        ]
    text = "\n".join(lines) + "\n"
    target = path or _default_config_path()
    added = None
    if write:
        from clore.rentals import add_include

        if not target.parent.exists():
            # ssh refuses keys and configs in a directory others can write: keep it private.
            target.parent.mkdir(mode=0o700, parents=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600)
        os.replace(tmp, target)
        app.out.info(f"wrote {len(hosts)} host(s) to {target}")
        added = add_include(target)
        if added is not None:
            backup = f" (the old file is {added.backup})" if added.backup is not None else ""
            app.out.info(f"added `{added.line}` at the top of {added.config}{backup}")
    document = {
        "path": str(target) if write else None,
        "hosts": hosts,
        "include_added": None if added is None else added.line,
        "backup": None if added is None or added.backup is None else str(added.backup),
    }
    app.out.result(document, lambda: None if write else app.out.echo(text.rstrip("\n")))


@click.command("open")
@click.argument("order_id", type=Id(), metavar="ORDER")
@click.option(
    "--browser/--no-browser",
    default=None,
    help="Open the URL in a browser (default: only when stdout is a terminal).",
)
@click.option(
    "--with-token",
    is_flag=True,
    help="Print the URL that logs in (with the Jupyter token remembered at rent time).",
)
@json_option
@pass_app
def open_url(app: AppContext, order_id: int, browser: bool | None, with_token: bool) -> None:
    """Print ORDER's HTTP URL (the forwarded http port) and open it in a browser.

    When the order was rented here with a Jupyter token, the browser opens it logged in;
    --with-token prints that URL (it holds the token) instead of the plain one.
    """
    from clore.rentals import LoginsFileError, RentalLogins
    from clore.rentals.credentials import jupyter_url

    order = app.api().get_order(order_id)
    url = order.http_url
    if not url:
        raise CliError(f"order {order_id} has no HTTP URL (no http port, or provisioning)", 1)
    try:
        saved = RentalLogins().get(order)
    except LoginsFileError as exc:
        app.out.warn(f"{exc}: opening the URL without a login")
        saved = None
    token = None if saved is None else saved.jupyter_token
    login = jupyter_url(url, token)
    if with_token and token is None:
        app.out.warn(f"no Jupyter token is remembered for order {order_id}: the plain URL")
    shown = login if with_token else url
    document = {
        "order_id": order_id,
        "url": url,
        "token_remembered": token is not None,
        "login_url": login if with_token and token is not None else None,
    }
    app.out.result(document, lambda: app.out.echo(shown))
    if browser or (browser is None and app.out.tty and not app.out.json_mode):
        import webbrowser

        webbrowser.open(login)
        if token is not None and not with_token:
            app.out.info("opened with the Jupyter token remembered at rent time")
    elif token is not None and not with_token:
        app.out.info(f"a Jupyter token is remembered: `clore open {order_id} --with-token` "
                     "prints the URL that logs in")  # fmt: skip


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
    order, host, port = _ready_order(app, order_id)
    remote = f"{user}@{host}:"
    src = remote + src_path if src_order is not None else src_path
    dst = remote + dst_path if dst_order is not None else dst_path
    chosen = tool
    if chosen == "auto":
        chosen = "rsync" if shutil.which("rsync") else "scp"
    options = _ssh_options(order, host, None)
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
