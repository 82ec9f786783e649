"""``serve``: run a sandbox as an HTTP server with uvicorn (``clore sandbox serve``).

It listens on loopback unless told otherwise, and refuses any other address without a
control token: the control plane hands out the funded demo key and resets, funds and
faults the sandbox. With a token and such an address it warns, on stderr, what is exposed.
The orders' machines (SSH, forwarded ports) listen on loopback whatever ``host`` is,
unless ``expose_machines`` says otherwise; ``serve`` runs them (taking them over from a
background host of the same database) and restarts those of running orders on their
ports when it starts again.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import TextIO

from clore._paths import data_dir
from clore.sandbox.access import (
    TOKEN_ENV,
    TOKEN_HEADER,
    ControlAccessError,
    check_token,
    is_loopback_address,
)
from clore.sandbox.backend.seed import SNAPSHOT

__all__ = ["default_db_path", "serve"]


def default_db_path() -> Path:
    """Where ``serve`` keeps its database unless told otherwise."""
    return data_dir() / "sandbox.db"


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, not yet listening (nothing can connect to it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say so, and
    # without it Nagle's algorithm and delayed ACKs add ~40 ms to every keep-alive answer.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _exposure(host: str, port: int) -> str:
    """The warning for a sandbox listening where other machines may reach it."""
    return (
        f"WARNING: the sandbox serves on {host}:{port}, which other machines may reach.\n"
        "WARNING: exposed to them: the API under /v1 (to anyone holding a sandbox key: the "
        "demo key, created users' keys), and the control plane under /_sandbox (reset, users, "
        f"faults, time, the demo key) to anyone presenting the control token in {TOKEN_HEADER}."
        "\nWARNING: plain HTTP: keys and the token cross the network unencrypted; "
        "serve on 127.0.0.1 unless other machines must connect.\n"
    )


def _machines_exposure(host: str) -> str:
    return (
        f"WARNING: every order's SSH server and forwarded ports listen on {host}, which other "
        "machines may reach: anyone who can connect may try to log in (an order's password "
        "or key lets them), its forwarded ports answer anyone, and commands run as this "
        "user (--expose-machines-publicly).\n"
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    db: str | Path | None = None,
    seed: str | Path | None = SNAPSHOT,
    time_scale: float = 1.0,
    demo_key: str | None = None,
    rate_limit: bool = True,
    market_activity: float = 0.0,
    rng_seed: int = 0,
    *,
    log_level: str = "warning",
    out: TextIO | None = None,
    control_token: str | None = None,
    err: TextIO | None = None,
    keep_machines: bool = False,
    expose_machines: bool = False,
    machines: bool = True,
) -> None:
    """Serve a sandbox on ``host:port`` until interrupted (``port=0`` picks a free port).

    Prints the base URL, the demo user's key and the database path first, one per line
    (on ``out``). ``control_token`` makes every ``/_sandbox/`` request need it in the
    ``x-sandbox-token`` header; without one, an address other than loopback is refused
    (``ControlAccessError``, a ``ValueError``), and with one such an address is warned
    about on ``err``. The token itself is never printed. A fourth banner line names the
    isolation the orders' machines run under. ``keep_machines`` keeps each ended order's
    directory (for debugging); ``expose_machines`` makes the machines listen on ``host``
    too (else loopback only), warned about on ``err``. ``machines=False`` runs none (load
    tests: orders get loopback ports where nothing listens).
    """
    import uvicorn

    from clore.sandbox.fleet import MachineOptions
    from clore.sandbox.service import Sandbox

    token = check_token(control_token, "--control-token")
    path = Path(db).expanduser() if db is not None and str(db) != ":memory:" else db
    sock = _bind(host, port)
    sandbox: Sandbox | None = None
    try:
        address, bound = sock.getsockname()[:2]
        if not is_loopback_address(address):
            if token is None:
                raise ControlAccessError(
                    f"refusing to serve on {host} without a control token: the control plane "
                    "(/_sandbox: reset, users, faults, the funded demo key) would be open to "
                    f"anyone who can connect; give --control-token (or set {TOKEN_ENV}), "
                    "or serve on 127.0.0.1"
                )
            (err or sys.stderr).write(_exposure(host, bound))
            (err or sys.stderr).flush()
        options = MachineOptions(mode="local" if machines else "off", keep=keep_machines)
        if expose_machines and machines:
            shown = None if address in ("0.0.0.0", "::") else address
            options = MachineOptions(
                mode="local", keep=keep_machines, host=address, public=True, advertise=shown
            )
            if not is_loopback_address(address):
                (err or sys.stderr).write(_machines_exposure(address))
                (err or sys.stderr).flush()
        sandbox = Sandbox(
            db=default_db_path() if path is None else path,
            seed=seed,
            rate_limit=rate_limit,
            market_activity=market_activity,
            demo_key=demo_key,
            rng_seed=rng_seed,
            time_scale=time_scale,
            control_token=token,
            machines=options,
        )
        hosting = not machines or sandbox.fleet.take_over()
        sock.listen(2048)
        shown = f"[{host}]" if ":" in host else host
        stream = out or sys.stdout
        stream.write(f"clore sandbox: http://{shown}:{bound}/v1\n")
        stream.write(f"demo key: {sandbox.demo_key}\n")
        stream.write(f"database: {sandbox.db}\n")
        info = sandbox.machines_info()
        where = "" if hosting else f" (run by process {info.get('host_pid')})"
        stream.write(f"machines: {info['isolation']}{where}\n")
        stream.flush()
        config = uvicorn.Config(sandbox.app, log_level=log_level, access_log=False, lifespan="off")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if sandbox is not None:
            sandbox.close()
