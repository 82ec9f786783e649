"""What a listing promises, in the units verification compares: ``Listing``.

Built from a marketplace ``clore.Server``, a ``my_orders`` ``clore.Order`` (which carries
its server's specs, owner and CUDA version) or a raw marketplace record (a mapping).
Every field may be unknown (None, or ``()`` for the power limits): a check whose listed
value is unknown measures and says so, it never fails on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from clore._wire import Order, Server
from clore._wire.common import ascii_int, parse_gpu

__all__ = ["Listing"]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _whole(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number == int(number) and number > 0 else None


@dataclass(frozen=True)
class Listing:
    """A server's advertised hardware.

    ``gpu`` is the model as listed without the count (``"NVIDIA GeForce RTX 4090"``),
    ``gpuram`` GB per GPU, ``pl`` each GPU's power limit in watts (a ``0`` entry: not
    listed), ``pcie_rev``/``pcie_width`` the link, ``cuda_version`` as listed (``"12.2"``),
    ``cpu_threads`` the second half of ``cpus`` ("12/24" -> 24), ``ram`` GB,
    ``disk_speed`` MB/s. ``server_id`` and ``owner`` name the host for the bad-host list.
    """

    server_id: int | None = None
    owner: int | None = None
    gpu: str = ""
    gpu_count: int = 0
    gpuram: float | None = None
    pl: tuple[float, ...] = ()
    pcie_rev: int | None = None
    pcie_width: int | None = None
    cuda_version: str | None = None
    cpu_threads: int | None = None
    ram: float | None = None
    disk_speed: float | None = None

    @classmethod
    def of(cls, source: Server | Order | Mapping[str, Any]) -> Listing:
        """The listing of a marketplace server, of an order's server, or of a raw record."""
        if isinstance(source, Server | Order):
            record = msgspec.to_builtins(source)
            server_id = source.id if isinstance(source, Server) else source.si
            return cls._from_record(record, server_id)
        if isinstance(source, Mapping):
            raw_id = source.get("id") if "si" not in source else source.get("si")
            return cls._from_record(source, _whole(raw_id))
        raise TypeError(f"Listing.of: expected a Server, an Order or a mapping, got {source!r}")

    @classmethod
    def _from_record(cls, record: Mapping[str, Any], server_id: int | None) -> Listing:
        specs = record.get("specs")
        specs = specs if isinstance(specs, Mapping) else {}
        gpu_text = specs.get("gpu")
        count, model = parse_gpu(gpu_text if isinstance(gpu_text, str) else "")
        pl = specs.get("pl")
        limits: tuple[float, ...] = ()
        if isinstance(pl, list):
            limits = tuple(n if (n := _number(x)) is not None and n > 0 else 0.0 for x in pl)
        cpus = specs.get("cpus")
        threads = ascii_int(cpus.split("/")[-1]) if isinstance(cpus, str) and cpus else None
        cuda = record.get("cuda_version")
        if isinstance(cuda, int | float) and not isinstance(cuda, bool):
            cuda = f"{cuda:g}"
        owner = record.get("owner")
        return cls(
            server_id=server_id,
            owner=owner if isinstance(owner, int) and not isinstance(owner, bool) else None,
            gpu=model,
            gpu_count=count,
            gpuram=_positive(specs.get("gpuram")),
            pl=limits,
            pcie_rev=_whole(specs.get("pcie_rev")),
            pcie_width=_whole(specs.get("pcie_width")),
            cuda_version=cuda.strip() or None if isinstance(cuda, str) else None,
            cpu_threads=threads or None,
            ram=_positive(specs.get("ram")),
            disk_speed=_positive(specs.get("disk_speed")),
        )

    def power_limit(self, index: int) -> float | None:
        """GPU ``index``'s listed power limit (the last entry for GPUs past the list's end);
        None when not listed (no list, or a 0, as laptop cards list)."""
        if not self.pl:
            return None
        value = self.pl[min(index, len(self.pl) - 1)]
        return value if value > 0 else None
