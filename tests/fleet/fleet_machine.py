"""One "machine" of a simulated fleet: run with its own CLORE_CACHE_DIR, CLORE_DATA_DIR and
HOME (``fleet_support.Machine``), and the fleet's CLORE_API_KEY, CLORE_BASE_URL and
CLORE_PACING_URL. Prints JSON lines on stdout.

``load THREADS SECONDS``
    THREADS threads call ``wallets`` (every fourth call ``my_orders``) until SECONDS have
    passed, with ``max_retries=0`` so that any code-5 answer shows; prints one line:
    ``{"ok": n, "rate_limited": n, "errors": [...], "first": t, "last": t}``.
``watch NAME COUNT INTERVAL SECONDS [TIMEOUT]``
    a ``Watcher`` renting the cheapest available server (on-demand, price locked) up to
    COUNT times with the ledger ``watch-NAME.json``, polling every INTERVAL s for at most
    SECONDS; prints each event (``kind``, ``order_id``, ``server_id``, ``message``) and,
    on a fatal error, ``{"kind": "fatal", "type": ..., "message": ...}``.
``rent SERVER TIMEOUT LEASE GO``
    prints ``{"kind": "ready"}``, waits until the file GO exists, then rents SERVER
    on-demand (``create_order``) with a client whose requests time out after TIMEOUT s
    and whose claims on a server have a lease of LEASE s; prints ``{"kind": "order",
    "order_id": ..., "server_id": ...}`` or ``{"kind": "error", "type": ..., "message":
    ...}``, with ``at`` (unix time) when the call returned.
``hold NAME SECONDS LEASE``
    takes the lock of ledger ``watch-NAME.json`` with a lease of LEASE s, prints
    ``{"kind": "locked"}``, holds it for SECONDS (or until killed), then tries to write and
    prints ``wrote`` or ``refused``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from clore import Clore, CloreError, RateLimitError, SystemClock


def _print(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def load(threads: int, seconds: float) -> None:
    client = Clore(max_retries=0, timeout=10)
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    totals: dict[str, Any] = {"ok": 0, "rate_limited": 0, "errors": [], "first": None}
    totals["last"] = None

    def work() -> None:
        calls = 0
        while time.monotonic() < stop:
            calls += 1
            try:
                if calls % 4 == 0:
                    client.my_orders()
                else:
                    client.wallets()
                outcome = "ok"
            except RateLimitError:
                outcome = "rate_limited"
            except CloreError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            now = time.time()
            with lock:
                if outcome in ("ok", "rate_limited"):
                    totals[outcome] += 1
                else:
                    totals["errors"].append(outcome)
                totals["first"] = now if totals["first"] is None else min(totals["first"], now)
                totals["last"] = now if totals["last"] is None else max(totals["last"], now)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    client.close()
    _print(**totals)


def watch(name: str, count: int, interval: float, seconds: float, timeout: float) -> None:
    from clore.workflows import RentSpec, StateFile, Watcher, workflows_dir

    client = Clore(timeout=timeout)
    clock = SystemClock()
    watcher = Watcher(
        client,
        clock,
        rent=RentSpec(image="cloreai/ubuntu22.04-jupyter", ssh_password="fleetpass1"),
        count=count,
        interval=interval,
        until=clock.time() + seconds,
        state=StateFile(workflows_dir() / f"watch-{name}.json"),
    )
    _print(kind="started", pid=os.getpid(), ledger=type(watcher.state).__name__)
    try:
        for event in watcher.run():
            _print(
                kind=event.kind,
                order_id=event.order_id,
                server_id=event.server_id,
                message=event.message,
            )
    except CloreError as exc:
        _print(kind="fatal", type=type(exc).__name__, message=str(exc))
    finally:
        client.close()


def rent(server_id: int, timeout: float, lease: float, go: str) -> None:
    from clore._pacing_redis import RedisPacer

    client = Clore(timeout=timeout)
    pacer = client._ctx.pacer
    assert isinstance(pacer, RedisPacer), type(pacer)
    pacer.claim_lease = lease
    _print(kind="ready", pid=os.getpid())
    while not os.path.exists(go):
        time.sleep(0.01)
    try:
        order = client.create_order(server_id, "cloreai/ubuntu22.04-jupyter")
        _print(kind="order", order_id=order.id, server_id=order.si, at=time.time())
    except CloreError as exc:
        _print(kind="error", type=type(exc).__name__, message=str(exc), at=time.time())
    finally:
        client.close()


def hold(name: str, seconds: float, lease: float) -> None:
    from clore._ledger_redis import FleetStateFile
    from clore._redis import key_digest
    from clore.workflows import WatchState, workflows_dir

    path = workflows_dir() / f"watch-{name}.json"
    url, key = os.environ["CLORE_PACING_URL"], os.environ["CLORE_API_KEY"]
    state = FleetStateFile(path, url, key_digest(key), lease=lease)
    with state.locked():
        _print(kind="locked", pid=os.getpid(), token=getattr(state, "token", None))
        time.sleep(seconds)
        try:
            state.write(WatchState())
            _print(kind="wrote")
        except CloreError as exc:
            _print(kind="refused", type=type(exc).__name__, message=str(exc))


def main(argv: list[str]) -> None:
    mode, args = argv[0], argv[1:]
    if mode == "load":
        load(int(args[0]), float(args[1]))
    elif mode == "watch":
        timeout = float(args[4]) if len(args) > 4 else 30.0
        watch(args[0], int(args[1]), float(args[2]), float(args[3]), timeout)
    elif mode == "rent":
        rent(int(args[0]), float(args[1]), float(args[2]), args[3])
    elif mode == "hold":
        hold(args[0], float(args[1]), float(args[2]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
