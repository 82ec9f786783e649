"""What a machine is asked to be: ``MachineSpec`` (an order's listing and its access),
``Delivers`` (what a lying host delivers instead) and ``Endpoint`` (where it answers).

Pure data with validation; nothing here starts anything or imports asyncssh.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeGuard

from clore._wire.common import ascii_int, parse_gpu

__all__ = ["PORT_KINDS", "Delivers", "Endpoint", "MachineSpec", "PortKind"]

PortKind = Literal["tcp", "http"]
PORT_KINDS: tuple[PortKind, ...] = ("tcp", "http")

_PCIE_WIDTHS = (1, 2, 4, 8, 16, 32)


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"delivers.{name} must be a number, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"delivers.{name} must be between {low:g} and {high:g}, got {value!r}")
    return number


def _integer(name: str, value: Any, allowed: tuple[int, ...] | range) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        shown = f"{allowed.start}..{allowed.stop - 1}" if isinstance(allowed, range) else allowed
        raise ValueError(f"delivers.{name} must be an integer in {shown}, got {value!r}")
    return value


@dataclass(frozen=True)
class Delivers:
    """Hardware a host delivers instead of what it lists; ``None`` fields deliver the listing.

    ``gpu`` the model name, ``gpu_count``, ``gpuram`` GB per GPU, ``power_limit`` watts per
    GPU, ``pcie_width`` lanes, ``pcie_gen`` generation, ``gpu_error`` makes the last GPU
    report ``ERR!`` (``nvidia-smi`` still exits 0), ``slow`` divides every benchmark's
    throughput inside the machine (1.0: full speed).
    """

    gpu: str | None = None
    gpu_count: int | None = None
    gpuram: float | None = None
    power_limit: float | None = None
    pcie_width: int | None = None
    pcie_gen: int | None = None
    gpu_error: bool = False
    slow: float = 1.0

    def __post_init__(self) -> None:
        if self.gpu is not None and not (
            isinstance(self.gpu, str) and 0 < len(self.gpu.strip()) <= 96
        ):
            raise ValueError("delivers.gpu must be a GPU model name of 1 to 96 characters")
        if self.gpu_count is not None:
            _integer("gpu_count", self.gpu_count, range(0, 65))
        if self.gpuram is not None:
            _number("gpuram", self.gpuram, 0.25, 1024)
        if self.power_limit is not None:
            _number("power_limit", self.power_limit, 0, 3000)
        if self.pcie_width is not None:
            _integer("pcie_width", self.pcie_width, _PCIE_WIDTHS)
        if self.pcie_gen is not None:
            _integer("pcie_gen", self.pcie_gen, range(1, 7))
        if not isinstance(self.gpu_error, bool):
            raise ValueError(f"delivers.gpu_error must be true or false, got {self.gpu_error!r}")
        _number("slow", self.slow, 1.0, 1000.0)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Delivers:
        """Read the control plane's ``delivers`` object (any subset); ValueError on bad input."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"delivers has no field {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )
        values = {k: v for k, v in data.items() if v is not None}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The fields that differ from an honest host (the inverse of ``from_mapping``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value != f.default:
                out[f.name] = value
        return out

    @property
    def honest(self) -> bool:
        """True when the host delivers exactly its listing."""
        return not self.to_dict()


@dataclass(frozen=True)
class MachineSpec:
    """One order's machine: the listing's hardware, the order's environment and access.

    Hardware fields are the marketplace's: ``gpu`` the model without the count,
    ``gpuram`` GB per GPU, ``pl`` the power limit of each GPU in watts (0: not reported),
    ``pcie_rev``/``pcie_width`` the link, ``cpus`` threads, ``ram`` GB. ``ports`` maps a
    container port to ``"tcp"`` or ``"http"`` (at most one http port); SSH is served when
    port 22 is forwarded as tcp. ``ssh_key`` is an authorized_keys text (one key a line).
    """

    order_id: int
    gpu: str = ""
    gpu_count: int = 0
    gpuram: float = 0.0
    pl: tuple[float, ...] = ()
    pcie_rev: int | None = None
    pcie_width: int | None = None
    cuda_version: str = ""
    cpus: int | None = None
    ram: float | None = None
    delivers: Delivers = field(default_factory=Delivers)
    env: Mapping[str, str] = field(default_factory=dict)
    command: str | None = None
    ssh_password: str | None = None
    ssh_key: str | None = None
    ports: Mapping[int, PortKind] = field(default_factory=lambda: {22: "tcp"})

    def __post_init__(self) -> None:
        if isinstance(self.order_id, bool) or not isinstance(self.order_id, int):
            raise ValueError(f"order_id must be an integer, got {self.order_id!r}")
        if self.order_id < 0:
            raise ValueError(f"order_id must be >= 0, got {self.order_id}")
        if not isinstance(self.delivers, Delivers):
            raise ValueError("delivers must be a Delivers")
        http = 0
        for port, kind in self.ports.items():
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise ValueError(f"forwarded port must be 1..65535, got {port!r}")
            if kind not in PORT_KINDS:
                raise ValueError(f"port {port} must be forwarded as tcp or http, got {kind!r}")
            http += kind == "http"
        if http > 1:
            raise ValueError("at most one port can be forwarded as http")
        for key, value in self.env.items():
            if not (isinstance(key, str) and isinstance(value, str)) or not key or "=" in key:
                raise ValueError(f"env names and values must be strings, got {key!r}")
            if "\0" in key or "\0" in value:
                raise ValueError(f"env variable {key!r} contains a NUL character")

    @property
    def ssh(self) -> bool:
        """True when the order forwards port 22 over tcp, so it gets an SSH server."""
        return self.ports.get(22) == "tcp"

    @property
    def http_port(self) -> int | None:
        """The container port forwarded as http, if any."""
        return next((p for p, kind in self.ports.items() if kind == "http"), None)

    @classmethod
    def from_server(
        cls, order_id: int, server: Mapping[str, Any] | Any, **order: Any
    ) -> MachineSpec:
        """Build a spec from a marketplace record (a raw dict or ``clore._wire.Server``).

        ``order`` carries the order's own fields: ``env``, ``command``, ``ssh_password``,
        ``ssh_key``, ``ports`` (``{"22": "tcp"}`` string keys accepted), ``delivers``
        (a ``Delivers`` or a mapping).
        """
        if isinstance(server, Mapping):
            specs: Mapping[str, Any] = server.get("specs") or {}
            cuda = server.get("cuda_version")
            get = specs.get
        else:  # clore._wire.Server: read the same fields off its structs
            cuda = server.cuda_version
            wire = server.specs

            def get(name: str, default: Any = None) -> Any:
                value = getattr(wire, name, default)
                return default if type(value).__name__ == "UnsetType" else value

        count, model = parse_gpu(str(get("gpu", "") or ""))
        pl = get("pl")
        limits = tuple(float(x) for x in pl if _is_number(x)) if isinstance(pl, list) else ()
        threads = ascii_int(str(get("cpus", "") or "").split("/")[-1])
        ram = get("ram")
        gpuram = get("gpuram")
        extra = dict(order)
        delivers = extra.pop("delivers", None)
        if isinstance(delivers, Mapping):
            delivers = Delivers.from_mapping(delivers)
        ports = extra.pop("ports", None)
        if ports is not None:
            extra["ports"] = {int(k): v for k, v in dict(ports).items()}
        return cls(
            order_id=order_id,
            gpu=model,
            gpu_count=count,
            gpuram=float(gpuram) if _is_number(gpuram) else 0.0,
            pl=limits,
            pcie_rev=_opt_int(get("pcie_rev")),
            pcie_width=_opt_int(get("pcie_width")),
            cuda_version="" if cuda is None else str(cuda),
            cpus=threads,
            ram=float(ram) if _is_number(ram) else None,
            delivers=delivers or Delivers(),
            **extra,
        )


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Endpoint:
    """Where a running machine answers, all on ``host`` (loopback unless told otherwise).

    ``tcp_ports`` maps each container port forwarded as tcp (22 included when forwarded)
    to its public port; ``http_public_port``/``http_url`` serve the http port.
    """

    order_id: int
    host: str
    ssh_port: int | None
    tcp_ports: Mapping[int, int]
    http_port: int | None
    http_public_port: int | None
    directory: Path
    isolation: str

    @property
    def http_url(self) -> str | None:
        """``http://HOST:PORT/`` of the http relay, or None without an http port."""
        if self.http_public_port is None:
            return None
        return f"http://{self.host}:{self.http_public_port}/"

    @property
    def tcp_ports_list(self) -> list[str]:
        """The API's ``tcp_ports`` form: ``["22:PORT", ...]`` in container-port order."""
        return [f"{c}:{p}" for c, p in sorted(self.tcp_ports.items())]
