"""Seeding: the real marketplace capture becomes hosts' servers, other renters and a demo user.

The snapshot ships as ``data/marketplace-snapshot-2024.json.gz``. Each server keeps its
record (specs, ratings, prices, ``mrl``); each server the capture shows ``rented`` is held
by another renter (the market user) on demand, ending at a random point within its
``mrl``; hosts keep their owner ids. The demo user hosts the servers of one small seed
host, so ``my_servers`` and the host endpoints have something to show.
"""

from __future__ import annotations

import functools
import gzip
import logging
import random
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any, TypeGuard

import msgspec

from clore._facts import MAX_ID, MAX_MRL_HOURS, MAX_PRICE
from clore._wire import Server
from clore.sandbox.backend.accounts import create_user
from clore.sandbox.backend.lifecycle import cluster_for, market_order
from clore.sandbox.backend.records import OrderRec, ServerRec, User
from clore.sandbox.backend.repository import Repository
from clore.sandbox.backend.rules import DEMO_BALANCES, MARKET_USER_ID

__all__ = ["SNAPSHOT", "SeedRecords", "load_records", "require_source", "seed"]

log = logging.getLogger("clore.sandbox")

SNAPSHOT = "snapshot"
#: Seed names for an empty market (only the demo user).
EMPTY = ("none", "empty")

#: Seed server records: each decoded (for seeding) and as encoded bytes (kept verbatim).
SeedRecords = tuple[tuple[dict[str, Any], bytes], ...]


def snapshot_bytes() -> bytes:
    """The bundled real ``marketplace`` response (3,500 servers), as the API sent it."""
    data = (
        resources.files("clore.sandbox")
        .joinpath("data/marketplace-snapshot-2024.json.gz")
        .read_bytes()
    )
    return gzip.decompress(data)


@functools.lru_cache(maxsize=4)
def _load(source: str, stamp: float) -> SeedRecords:
    if source == SNAPSHOT:
        raw = snapshot_bytes()
    else:
        raw = Path(source).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    doc = msgspec.json.decode(raw)
    servers = doc.get("servers") if isinstance(doc, dict) else doc
    if not isinstance(servers, list):
        raise ValueError(f"{source}: expected a marketplace response or a list of servers")
    out = []
    seen: set[int] = set()
    for record in servers:
        if _usable(record, seen):
            out.append((record, msgspec.json.encode(record)))
    if len(out) < len(servers):
        log.warning(
            "seed %s: skipped %d unusable server record(s)", source, len(servers) - len(out)
        )
    return tuple(out)


def _usable(record: object, seen: set[int]) -> bool:
    """True for a record the sandbox can serve and the SDK can read: an object with an id
    not seen before, in the range ids may take, that decodes as a ``Server``."""
    if not isinstance(record, dict):
        return False
    sid = record.get("id")
    if not isinstance(sid, int) or isinstance(sid, bool) or not 0 < sid <= MAX_ID or sid in seen:
        return False
    try:
        msgspec.convert(record, Server, strict=False)
    except msgspec.ValidationError:
        return False
    seen.add(sid)
    return True


def load_records(source: str | None) -> SeedRecords:
    """The server records of a seed source: ``"snapshot"``, a JSON(.gz) path, or None."""
    if source is None or source in EMPTY:
        return ()
    stamp = 0.0 if source == SNAPSHOT else Path(source).stat().st_mtime
    return _load(source, stamp)


def _demo_host(records: SeedRecords) -> int | None:
    """A small host (about three servers, none rented) whose servers the demo user gets."""
    counts = Counter(r["owner"] for r, _ in records if isinstance(r.get("owner"), int))
    busy = {r.get("owner") for r, _ in records if r.get("rented")}
    candidates = [(abs(n - 3), owner) for owner, n in counts.items() if owner not in busy]
    return min(candidates)[1] if candidates else None


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_table(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if _number(v) and 0 < v < MAX_PRICE}


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _server(record: dict[str, Any], raw: bytes, pos: int, fallback_owner: int) -> ServerRec:
    price = _table(record.get("price"))
    net = _table(_table(record.get("specs")).get("net"))
    owner = record.get("owner")
    coins = record.get("allowed_coins")
    mrl = record.get("mrl")
    return ServerRec(
        id=record["id"],
        owner=owner if isinstance(owner, int) else fallback_owner,
        name=f"server-{record['id']}",
        pos=pos,
        record=raw,
        mrl=mrl if _number(mrl) and 0 < mrl <= MAX_MRL_HOURS else 24,
        on_demand=_number_table(price.get("on_demand")),
        spot=_number_table(price.get("spot")),
        allowed_coins=[c for c in coins if isinstance(c, str)] if isinstance(coins, list) else [],
        rented=False,
        cluster=cluster_for(record["id"], str(net.get("cc", ""))),
    )


def seed(
    repo: Repository,
    records: SeedRecords,
    now: float,
    *,
    rng_seed: int,
    demo_key: str,
) -> int:
    """Fill an empty repository from ``records``; returns the demo user's id."""
    rng = random.Random(f"clore-sandbox-seed:{rng_seed}")
    demo_id = _demo_host(records)
    owners = [r["owner"] for r, _ in records if isinstance(r.get("owner"), int)]
    if demo_id is None:
        demo_id = max([0, *owners]) + 1
    servers = [_server(record, raw, pos, demo_id) for pos, (record, raw) in enumerate(records)]
    rev = repo.next_rev()
    for server in servers:
        server.rev = rev
    market = User(id=MARKET_USER_ID, name="market", api_key=None, kind="market", created=now)
    repo.insert_user(market)
    create_user(repo, now, "demo", DEMO_BALANCES, api_key=demo_key, kind="demo", user_id=demo_id)
    held: list[OrderRec] = []
    for server, (record, _) in zip(servers, records, strict=True):
        if not record.get("rented"):
            continue
        currency = next((c for c in server.allowed_coins if c in server.on_demand), None)
        if currency is None:
            continue
        mrl = float(server.mrl) * 3600.0
        ct = now - rng.uniform(0.0, 0.9) * mrl
        server.rented = True
        price = float(server.on_demand[currency])
        held.append(
            market_order(
                server,
                spot=False,
                currency=currency,
                price=price,
                ct=ct,
                end_at=ct + mrl,
                billed_until=now,
                active=True,
            )
        )
    repo.insert_servers(servers)
    repo.insert_orders(held)
    repo.set_meta("base_rev", str(rev))
    repo.set_meta("demo_user", str(demo_id))
    repo.set_meta("seeded", repr(now))
    return demo_id


def require_source(source: str | None) -> str | None:
    """Validate a seed option: ``"snapshot"``, ``"none"``/``"empty"``/None, or a file."""
    if source is None or source == SNAPSHOT or source in EMPTY:
        return None if source in EMPTY else source
    if not Path(source).is_file():
        raise ValueError(f"seed: {source!r} is not 'snapshot', 'none'/'empty' or a JSON file")
    return str(Path(source).resolve())
