"""``python -m clore.sandbox serve [options]``: the sandbox server without the CLI."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The argument parser (the same options as ``clore sandbox serve``)."""
    root = argparse.ArgumentParser(prog="python -m clore.sandbox")
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the Clore.ai API v1 sandbox over HTTP")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    run.add_argument("--db", default=None, help="SQLite file (default: in the data directory)")
    run.add_argument("--seed", default="snapshot", help="'snapshot', 'empty' or a JSON file")
    run.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per second")
    run.add_argument("--demo-key", default=None, help="fix the demo user's API key")
    run.add_argument("--no-rate-limit", action="store_true", help="turn the rate limits off")
    run.add_argument("--market-activity", type=float, default=0.0, help="market events per second")
    run.add_argument("--rng-seed", type=int, default=0, help="seed of the market simulation")
    run.add_argument("--log-level", default="warning")
    run.add_argument(
        "--control-token",
        default=os.environ.get("CLORE_SANDBOX_TOKEN"),
        help="require this x-sandbox-token on /_sandbox requests (needed off loopback; "
        "default: $CLORE_SANDBOX_TOKEN)",
    )
    run.add_argument(
        "--keep-machines", action="store_true", help="keep ended orders' machine directories"
    )
    run.add_argument("--no-machines", action="store_true", help="run no machines (API load tests)")
    run.add_argument(
        "--expose-machines-publicly",
        action="store_true",
        help="let the orders' SSH and forwarded ports listen on --host too (default: loopback)",
    )
    return root


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` and run the command."""
    import sqlite3

    from clore.sandbox.server import serve

    root = parser()
    args = root.parse_args(argv)
    try:
        serve(
            host=args.host,
            port=args.port,
            db=args.db,
            seed=args.seed,
            time_scale=args.time_scale,
            demo_key=args.demo_key,
            rate_limit=not args.no_rate_limit,
            market_activity=args.market_activity,
            rng_seed=args.rng_seed,
            log_level=args.log_level,
            control_token=args.control_token,
            keep_machines=args.keep_machines,
            expose_machines=args.expose_machines_publicly,
            machines=not args.no_machines,
        )
    except KeyboardInterrupt:
        pass
    except (ValueError, OSError, sqlite3.Error) as exc:
        # A bad option value, seed file, database path, address or control token: a usage
        # error (exit 2) with one line that says which (never the token), not a traceback.
        root.error(str(exc))


if __name__ == "__main__":
    main()
