"""``serve``: run a sandbox as an HTTP server with uvicorn (``clore sandbox serve``)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import TextIO

from clore._paths import data_dir
from clore.sandbox.backend.seed import SNAPSHOT

__all__ = ["default_db_path", "serve"]


def default_db_path() -> Path:
    """Where ``serve`` keeps its database unless told otherwise."""
    return data_dir() / "sandbox.db"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say so, and
    # without it Nagle's algorithm and delayed ACKs add ~40 ms to every keep-alive answer.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


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
) -> None:
    """Serve a sandbox on ``host:port`` until interrupted (``port=0`` picks a free port).

    Prints the base URL, the demo user's key and the database path first, one per line.
    """
    import uvicorn

    from clore.sandbox.service import Sandbox

    path = Path(db).expanduser() if db is not None and str(db) != ":memory:" else db
    sandbox = Sandbox(
        db=default_db_path() if path is None else path,
        seed=seed,
        rate_limit=rate_limit,
        market_activity=market_activity,
        demo_key=demo_key,
        rng_seed=rng_seed,
        time_scale=time_scale,
    )
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    stream = out or sys.stdout
    stream.write(f"clore sandbox: http://{shown}:{bound}/v1\n")
    stream.write(f"demo key: {sandbox.demo_key}\n")
    stream.write(f"database: {sandbox.db}\n")
    stream.flush()
    config = uvicorn.Config(sandbox.app, log_level=log_level, access_log=False, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        sandbox.close()
