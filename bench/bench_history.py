"""Market history: recording a snapshot beside decoding it, the size of 30 days, a 30-day series.

1. **Record vs decode.** A store holding 30 days of 5-minute history (8,640 snapshots of
   the 3,500-server capture) records one more full listing beside the SDK's decode of
   the same marketplace bytes, interleaved round by round, best time of each. Each round
   decodes afresh (a recorder never gets the previous objects back) and rents or releases
   48 servers (the simulated market's rate of change per 5 minutes). Goal: <= 1.0.
2. **Size** of the database for those 30 days (file, after close). Goal: < 200 MB.
3. **``history --since 30d`` for one model** (RTX 4090): the series as the command computes
   it (library call and JSON document, in-process), best of 3; the same command as a
   subprocess (with interpreter start) is printed beside it. Goal: < 1 s in-process.

The 30 days are built in bulk (``--simulate`` uses the market simulation instead, about
20 s): the first snapshot is recorded from the capture through ``HistoryStore.record``,
then each of the next 8,639 snapshots gets its change rows inserted directly in the
store's schema (one transaction), drawn to match the simulation's profile: per snapshot
a Poisson number (mean 48) of random servers, each rented or released (60 %) or repriced
by a log-normal factor (σ 6 %, 40 %), and one server in 300 leaving or rejoining the
listing; rates drift as in the simulation. Reopening the store then loads that state, so
the measured ``record`` compares with it exactly as after a long recording.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from clore._core import ENDPOINTS, decode_response
from clore.market.history import (
    HistoryStore,
    Selection,
    capture_servers,
    generate,
    series,
    series_document,
)
from clore.sandbox import snapshot_bytes

DAYS = 30
INTERVAL = 300
CHANGES = 48
END = 1_700_000_000.0
GOALS = {"ratio": 1.0, "size_mb": 200.0, "series_s": 1.0}
_COLUMNS = (
    "server, snap, static, online, rented, od_btc, od_clore, od_usd, "
    "sp_btc, sp_clore, sp_usd, rating, ratings, reliability"
)


def _poisson(rng: random.Random, lam: float) -> int:
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


def build_bulk(path: Path, days: int) -> None:
    """The first snapshot through the store, the rest as synthetic rows (see the module)."""
    servers = capture_servers()
    total = days * 86400 // INTERVAL
    first_t = END - (total - 1) * INTERVAL
    rates = {"bitcoin": 68022.87, "CLORE-Blockchain": 0.002705, "USD-Blockchain": 1.0}
    with HistoryStore(path) as store:
        store.record(servers, at=first_t, rates=rates)
    db = sqlite3.connect(path, isolation_level=None)
    state = {
        row[0]: list(row)
        for row in db.execute(f"SELECT {_COLUMNS} FROM changes WHERE snap = 1 ORDER BY server")
    }
    ids = sorted(state)
    away: dict[int, list[Any]] = {}  # servers out of the listing: their last listed row
    rng = random.Random("bench-history")
    snapshots: list[tuple[int, float, int, str]] = []
    rows: list[tuple[Any, ...]] = []
    listed = len(ids)
    for snap in range(2, total + 1):
        rates["bitcoin"] *= math.exp(rng.gauss(0.0, 0.0015))
        rates["CLORE-Blockchain"] *= math.exp(rng.gauss(0.0, 0.003))
        for sid in {rng.choice(ids) for _ in range(_poisson(rng, CHANGES))}:
            row = state[sid]
            if sid in away or rng.random() < 1 / 300:
                if sid in away:  # back in the listing as it left
                    row = state[sid] = away.pop(sid)
                    listed += 1
                else:
                    away[sid] = row
                    listed -= 1
                    rows.append((sid, snap, row[2], 0, *([None] * 10)))
                    continue
            elif rng.random() < 0.6:
                row[4] = 0 if row[4] else 1
            else:
                factor = math.exp(rng.gauss(0.0, 0.06))
                row[5:11] = [None if v is None else round(v * factor, 8) for v in row[5:11]]
            row[1] = snap
            rows.append(tuple(row))
        snapshots.append((snap, first_t + (snap - 1) * INTERVAL, listed, json.dumps(rates)))
    db.execute("BEGIN")
    db.executemany("INSERT INTO snapshots (id, t, listed, rates) VALUES (?, ?, ?, ?)", snapshots)
    db.executemany(f"INSERT INTO changes ({_COLUMNS}) VALUES ({', '.join('?' * 14)})", rows)
    db.execute("COMMIT")
    db.close()


def build_simulated(path: Path, days: int) -> None:
    """The market simulation's history (``clore sandbox history``)."""
    with HistoryStore(path) as store:
        generate(store, days=days, interval=INTERVAL, end=END)


def record_vs_decode(path: Path, rounds: int) -> tuple[float, float, int]:
    """Best record time, best decode time, changed rows per record."""
    data = snapshot_bytes()
    rng = random.Random("bench-history-record")
    record_best = decode_best = math.inf
    changed = 0
    flipped: set[int] = set()  # servers rented/released since the capture, cumulatively
    with HistoryStore(path) as store:
        at = END + INTERVAL
        store.record(capture_servers(), at=at)  # bring the stored state to the capture
        for _ in range(rounds):
            # A fresh decode each round, as a recorder gets: no object is shared with the
            # previous listing, so nothing is recognised by identity.
            started = time.perf_counter()
            decoded = decode_response(ENDPOINTS["marketplace"], 200, {}, data).servers
            decode_best = min(decode_best, time.perf_counter() - started)
            flipped ^= set(rng.sample(range(len(decoded)), CHANGES))
            listing = list(decoded)
            for i in flipped:
                listing[i] = msgspec.structs.replace(listing[i], rented=not listing[i].rented)
            at += INTERVAL
            started = time.perf_counter()
            result = store.record(listing, at=at)
            record_best = min(record_best, time.perf_counter() - started)
            changed = result.changed
    return record_best, decode_best, changed


def series_time(path: Path) -> tuple[float, int, int]:
    """Best in-process time of ``history --since 30d --model 4090 --json``; points, rows."""
    best = math.inf
    points = 0
    for _ in range(3):
        started = time.perf_counter()
        with HistoryStore(path) as store:
            last = store.last_snapshot()
            assert last is not None
            result = series(store, Selection(model="4090"), since=last.t - 30 * 86400)
            msgspec.json.encode(series_document(result))
        best = min(best, time.perf_counter() - started)
        points = len(result.points)
    with sqlite3.connect(path) as db:
        rows = int(db.execute("SELECT COUNT(*) FROM changes").fetchone()[0])
    return best, points, rows


def command_time(path: Path) -> float:
    """The same as a subprocess: ``clore market history ... --json`` (interpreter start too)."""
    best = math.inf
    for _ in range(2):
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "clore",
                "market",
                "history",
                "--model",
                "4090",
                "--since",
                f"{END - 30 * 86400 - 600:.0f}",
                "--json",
                "--db",
                str(path),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--simulate", action="store_true", help="build with the simulation")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.db"
        started = time.perf_counter()
        (build_simulated if args.simulate else build_bulk)(path, args.days)
        built = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        how = "simulated" if args.simulate else "bulk synthetic rows"
        print(f"built {args.days} days of {INTERVAL}s snapshots ({how}) in {built:.1f} s")
        seconds, points, rows = series_time(path)
        record, decode, changed = record_vs_decode(path, args.rounds)
        command = command_time(path)
    ratio = record / decode
    print(f"  rows: {rows} change rows ({rows / (args.days * 86400 / INTERVAL):.1f} per snapshot)")
    print(
        f"  record one 3,500-server snapshot ({changed} changed): {record * 1e3:.2f} ms; "
        f"decode it: {decode * 1e3:.2f} ms; ratio {ratio:.2f}x (goal <= {GOALS['ratio']:.1f}x)"
    )
    print(
        f"  database size for {args.days} days: {size_mb:.1f} MB (goal < {GOALS['size_mb']:.0f} MB)"
    )
    print(
        f"  history --since {args.days}d --model 4090: {seconds:.2f} s in-process "
        f"({points} points; goal < {GOALS['series_s']:.0f} s), {command:.2f} s as a command"
    )
    over = [
        name
        for name, value in (("ratio", ratio), ("size_mb", size_mb), ("series_s", seconds))
        if value > GOALS[name]
    ]
    print("all goals met" if not over else f"OVER GOAL: {', '.join(over)}")
    return 0 if not over else 1


if __name__ == "__main__":
    sys.exit(main())
