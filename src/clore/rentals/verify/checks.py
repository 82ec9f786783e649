"""The checks: what was measured against what was listed, each with a verdict.

``evaluate(listing, measured)`` returns one ``Check`` per name below, in this order. A
verdict is ``ok``, ``warn``, ``fail`` or ``skip`` (nothing to compare: not listed, not
measurable here); ``hard`` marks the checks whose failure means the GPUs are not the ones
paid for (the rule for cancelling without asking outside the free window).

============  =====================================================================  =====
check         rule                                                                   hard
============  =====================================================================  =====
gpu_count     GPUs ``nvidia-smi`` lists = listed; fewer: fail; more: warn            yes
gpu_model     every GPU's model is the listed one (``canonical_model``, and a        yes
              measured name may add qualifiers: ``matches_model(listed, measured)``)
gpu_memory    each GPU's memory.total >= 95 % of the listed ``gpuram`` (GB = GiB)    yes
gpu_health    ``nvidia-smi`` exits 0, no ``ERR!`` in its table, no unreadable        yes
              field (``[Unknown Error]``, ``[GPU is lost]``, garbage), the load found
              no faulty GPU
power_limit   each GPU's power.limit vs its listed ``pl``: >= 98 % ok, 90-98 % warn,  no
              < 90 % fail; a card reporting none (``[N/A]``) warns
pcie_width    each GPU's link width (current under load, else max) >= listed         no
pcie_gen      each GPU's link generation (current under load, else max: an idle      no
              link drops to gen 1) >= listed ``pcie_rev``
cuda          the CUDA version in the ``nvidia-smi`` header >= listed                no
cpu_threads   ``nproc`` >= the listed threads (``cpus`` "12/24" -> 24)                no
ram           MemTotal >= 90 % of the listed ``ram``                                 no
disk_write    fsync'd ``dd`` MB/s >= 50 % of the listed ``disk_speed``, else warn    no
              (never fails: the listing's figure is measured differently)
throughput    each GPU's FP32 matmul Gflop/s vs the listed model's peak               no
              (``expected.peak_fp32_gflops``): >= 45 % ok, 30-45 % warn, < 30 % fail;
              a GPU under 70 % of the fastest warns; skipped without PyTorch, CuPy or
              gpu_burn on the rental, or for a model without a reference figure
============  =====================================================================  =====

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Literal

import msgspec

from clore.market.models import canonical_model, matches_model
from clore.rentals.verify.expected import peak_fp32_gflops
from clore.rentals.verify.listing import Listing
from clore.rentals.verify.probes import GpuReading, Measured

__all__ = [
    "CHECK_NAMES",
    "DISK_WARN",
    "GPU_MEMORY_MIN",
    "HARD_CHECKS",
    "POWER_FAIL",
    "POWER_OK",
    "RAM_MIN",
    "THROUGHPUT_FAIL",
    "THROUGHPUT_OK",
    "THROUGHPUT_SPREAD",
    "Check",
    "Verdict",
    "evaluate",
    "overall",
]

Verdict = Literal["ok", "warn", "fail", "skip"]

#: Every check, in report order (``ssh`` comes first: the connection itself).
CHECK_NAMES: Final = (
    "ssh",
    "gpu_count",
    "gpu_model",
    "gpu_memory",
    "gpu_health",
    "power_limit",
    "pcie_width",
    "pcie_gen",
    "cuda",
    "cpu_threads",
    "ram",
    "disk_write",
    "throughput",
)
#: Checks whose failure means the GPUs are not what was paid for.
HARD_CHECKS: Final = frozenset({"gpu_count", "gpu_model", "gpu_memory", "gpu_health"})

GPU_MEMORY_MIN: Final = 0.95
POWER_FAIL: Final = 0.90
POWER_OK: Final = 0.98
RAM_MIN: Final = 0.90
DISK_WARN: Final = 0.50
THROUGHPUT_OK: Final = 0.45
THROUGHPUT_FAIL: Final = 0.30
THROUGHPUT_SPREAD: Final = 0.70

_RANK: Final[dict[str, int]] = {"skip": 0, "ok": 1, "warn": 2, "fail": 3}


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One comparison: its name, verdict, the listed and measured values as shown to a
    person (None: unknown), a one-line reason, and whether a fail is ``hard``."""

    name: str
    verdict: Verdict
    listed: str | None
    measured: str | None
    reason: str
    hard: bool = False


def overall(checks: Sequence[Check]) -> Verdict:
    """``fail`` if any check failed, else ``warn`` if any warned, else ``ok``."""
    worst = max((_RANK[c.verdict] for c in checks), default=1)
    return "fail" if worst == 3 else "warn" if worst == 2 else "ok"


def _check(
    name: str, verdict: Verdict, listed: str | None, measured: str | None, reason: str
) -> Check:
    return Check(
        name=name,
        verdict=verdict,
        listed=listed,
        measured=measured,
        reason=reason,
        hard=name in HARD_CHECKS,
    )


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _spread(values: Sequence[float], unit: str, digits: int | None = None) -> str:
    """``450 W``, or ``250-265 W`` when the GPUs differ (``digits`` fixes the decimals)."""

    def show(value: float) -> str:
        return _num(value) if digits is None else f"{value:.{digits}f}"

    low, high = min(values), max(values)
    if abs(high - low) < 0.05:
        return f"{show(low)} {unit}".rstrip()
    return f"{show(low)}-{show(high)} {unit}".rstrip()


def _gpus(indices: Sequence[int]) -> str:
    return ("GPU " if len(indices) == 1 else "GPUs ") + ",".join(str(i) for i in indices)


def _version(text: str) -> tuple[int, ...] | None:
    parts = text.strip().split(".")
    if not parts or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


# ---- GPUs -------------------------------------------------------------------------------


def _gpu_count(listing: Listing, measured: Measured) -> Check:
    have = len(measured.gpus)
    shown = str(have) if measured.query_exit == 0 or have else "none readable"
    if listing.gpu_count <= 0:
        return _check("gpu_count", "skip", None, shown, "the listing names no GPU")
    listed = str(listing.gpu_count)
    if have == listing.gpu_count:
        return _check("gpu_count", "ok", listed, shown, "as listed")
    if have < listing.gpu_count:
        return _check(
            "gpu_count", "fail", listed, shown, f"{listing.gpu_count - have} fewer than listed"
        )
    return _check(
        "gpu_count", "warn", listed, shown, f"{have - listing.gpu_count} more than listed"
    )


def _gpu_model(listing: Listing, measured: Measured) -> Check:
    names = [g.name for g in measured.gpus if g.name]
    shown = ", ".join(sorted(set(names))) or None
    want = canonical_model(listing.gpu)
    if not want:
        return _check("gpu_model", "skip", None, shown, "the listing names no model")
    if not names:
        return _check("gpu_model", "skip", listing.gpu, None, "no GPU name was readable")
    wrong = [
        g.index
        for g in measured.gpus
        if g.name
        and canonical_model(g.name) != want
        and not matches_model(want, canonical_model(g.name))
    ]
    if not wrong:
        return _check("gpu_model", "ok", listing.gpu, shown, "as listed")
    others = sorted({canonical_model(g.name) for g in measured.gpus if g.index in wrong})
    return _check(
        "gpu_model",
        "fail",
        listing.gpu,
        shown,
        f"{_gpus(wrong)} {'is' if len(wrong) == 1 else 'are'} {', '.join(others)}, not {want}",
    )


def _gpu_memory(listing: Listing, measured: Measured) -> Check:
    sizes = [(g.index, g.memory_mib / 1024) for g in measured.gpus if g.memory_mib is not None]
    shown = _spread([gb for _, gb in sizes], "GB") if sizes else None
    listed = f"{_num(listing.gpuram)} GB" if listing.gpuram else None
    if not sizes:
        return _check("gpu_memory", "skip", listed, None, "no GPU reported its memory")
    if listing.gpuram is None:
        return _check("gpu_memory", "skip", None, shown, "the listing gives no GPU memory")
    floor = listing.gpuram * GPU_MEMORY_MIN
    small = [(i, gb) for i, gb in sizes if gb < floor]
    if not small:
        return _check("gpu_memory", "ok", listed, shown, f">= {GPU_MEMORY_MIN:.0%} of listed")
    gb = min(gb for _, gb in small)
    return _check(
        "gpu_memory",
        "fail",
        listed,
        shown,
        f"{_gpus([i for i, _ in small])}: {gb:.1f} GB, under {GPU_MEMORY_MIN:.0%} of "
        f"{_num(listing.gpuram)} GB",
    )


def _gpu_health(listing: Listing, measured: Measured) -> Check:
    problems: list[str] = []
    if measured.smi_exit is None:
        problems.append("nvidia-smi did not run")
    elif measured.smi_exit == 127:
        problems.append("nvidia-smi is not installed")
    elif measured.smi_exit != 0:
        first = next((ln.strip() for ln in measured.smi_output.splitlines() if ln.strip()), "")
        problems.append(f"nvidia-smi exited {measured.smi_exit}" + (f": {first}" if first else ""))
    if measured.table_errors:
        verb = "shows" if len(measured.table_errors) == 1 else "show"
        problems.append(f"nvidia-smi exited 0 but {_gpus(measured.table_errors)} {verb} ERR!")
    if measured.query_exit not in (0, None) or measured.query_problem:
        problems.append(f"query unreadable: {measured.query_problem or measured.query_exit}")
    for gpu in measured.gpus:
        if gpu.unreadable:
            problems.append(f"GPU {gpu.index}: {', '.join(gpu.unreadable)} unreadable")
    load = measured.throughput
    if load is not None:
        if load.faulty:
            problems.append(f"{load.tool}: {_gpus(load.faulty)} FAULTY")
        for index, error in sorted(load.errors.items()):
            problems.append(f"{load.tool}: GPU {index}: {error}")
    if problems:
        return _check(
            "gpu_health", "fail", "no errors", f"{len(problems)} problem(s)", "; ".join(problems)
        )
    shown = "nvidia-smi exit 0, no errors"
    if load is not None:
        shown += f", {load.tool} passed"
    return _check("gpu_health", "ok", "no errors", shown, "every GPU readable")


def _power_limit(listing: Listing, measured: Measured) -> Check:
    listed_values = [
        w for g in measured.gpus if (w := listing.power_limit(g.index)) is not None
    ] or [w for w in listing.pl if w > 0]
    listed = _spread(listed_values, "W") if listed_values else None
    readings = [g.power_limit_w for g in measured.gpus if g.power_limit_w is not None]
    shown = _spread(readings, "W") if readings else None
    if not listed_values:
        return _check("power_limit", "skip", None, shown, "the listing gives no power limit")
    if not measured.gpus:
        return _check("power_limit", "skip", listed, None, "no GPU was readable")
    worst: tuple[float, int, float, float] | None = None
    silent: list[int] = []
    for gpu in measured.gpus:
        want = listing.power_limit(gpu.index)
        if want is None:
            continue
        if gpu.power_limit_w is None:
            silent.append(gpu.index)
            continue
        ratio = gpu.power_limit_w / want
        if worst is None or ratio < worst[0]:
            worst = (ratio, gpu.index, gpu.power_limit_w, want)
    if worst is not None and worst[0] < POWER_OK:
        ratio, index, have, want = worst
        verdict: Verdict = "fail" if ratio < POWER_FAIL else "warn"
        return _check(
            "power_limit",
            verdict,
            listed,
            shown,
            f"GPU {index}: {_num(have)} W of {_num(want)} W listed ({ratio:.0%})",
        )
    if silent:
        return _check("power_limit", "warn", listed, shown, f"{_gpus(silent)} report no limit")
    return _check("power_limit", "ok", listed, shown, f">= {POWER_OK:.0%} of listed")


def _link(
    measured: Measured,
    current: Callable[[GpuReading], int | None],
    maximum: Callable[[GpuReading], int | None],
) -> list[tuple[int, int]]:
    values: list[tuple[int, int]] = []
    for gpu in measured.gpus:
        now, top = current(gpu), maximum(gpu)
        value = (now if now is not None else top) if measured.under_load else top
        if value is None:
            value = now
        if value is not None:
            values.append((gpu.index, value))
    return values


def _when(measured: Measured) -> str:
    return "under load" if measured.under_load else "read idle: the maximum"


def _pcie_width(listing: Listing, measured: Measured) -> Check:
    widths = _link(measured, lambda g: g.pcie_width_current, lambda g: g.pcie_width_max)
    shown = f"x{_spread([float(w) for _, w in widths], '')}" if widths else None
    listed = f"x{listing.pcie_width}" if listing.pcie_width else None
    if not widths:
        return _check("pcie_width", "skip", listed, None, "no GPU reported its link")
    if listing.pcie_width is None:
        return _check("pcie_width", "skip", None, shown, "the listing gives no width")
    narrow = [(i, w) for i, w in widths if w < listing.pcie_width]
    if narrow:
        width = min(w for _, w in narrow)
        where = _gpus([i for i, _ in narrow])
        return _check(
            "pcie_width",
            "fail",
            listed,
            shown,
            f"{where} at x{width} ({_when(measured)}), listed x{listing.pcie_width}",
        )
    return _check("pcie_width", "ok", listed, shown, f"as listed ({_when(measured)})")


def _pcie_gen(listing: Listing, measured: Measured) -> Check:
    gens = _link(measured, lambda g: g.pcie_gen_current, lambda g: g.pcie_gen_max)
    shown = f"gen {_spread([float(g) for _, g in gens], '')}" if gens else None
    listed = f"gen {listing.pcie_rev}" if listing.pcie_rev else None
    if not gens:
        return _check("pcie_gen", "skip", listed, None, "no GPU reported its link")
    if listing.pcie_rev is None:
        return _check("pcie_gen", "skip", None, shown, "the listing gives no generation")
    slow = [(i, g) for i, g in gens if g < listing.pcie_rev]
    if slow:
        gen = min(g for _, g in slow)
        where = _gpus([i for i, _ in slow])
        return _check(
            "pcie_gen",
            "fail",
            listed,
            shown,
            f"{where} at gen {gen} ({_when(measured)}), listed gen {listing.pcie_rev}",
        )
    return _check("pcie_gen", "ok", listed, shown, f"as listed ({_when(measured)})")


# ---- software and host ----------------------------------------------------------------


def _cuda(listing: Listing, measured: Measured) -> Check:
    shown = measured.cuda_version
    if shown and measured.driver_version:
        shown = f"{shown} (driver {measured.driver_version})"
    listed = listing.cuda_version
    if measured.cuda_version is None:
        verdict: Verdict = "skip" if measured.smi_exit != 0 else "warn"
        return _check("cuda", verdict, listed, None, "no CUDA version in the nvidia-smi header")
    if listed is None:
        return _check("cuda", "skip", None, shown, "the listing gives no CUDA version")
    have, want = _version(measured.cuda_version), _version(listed)
    if have is None or want is None:
        return _check("cuda", "warn", listed, shown, "a version that cannot be compared")
    if have < want:
        return _check("cuda", "fail", listed, shown, f"older than the listed {listed}")
    return _check("cuda", "ok", listed, shown, ">= listed")


def _cpu_threads(listing: Listing, measured: Measured) -> Check:
    listed = str(listing.cpu_threads) if listing.cpu_threads else None
    shown = None if measured.cpu_threads is None else str(measured.cpu_threads)
    if measured.cpu_threads is None:
        return _check("cpu_threads", "warn", listed, None, "nproc gave no number")
    if listing.cpu_threads is None:
        return _check("cpu_threads", "skip", None, shown, "the listing gives no thread count")
    if measured.cpu_threads < listing.cpu_threads:
        missing = listing.cpu_threads - measured.cpu_threads
        return _check("cpu_threads", "fail", listed, shown, f"{missing} fewer than listed")
    return _check("cpu_threads", "ok", listed, shown, ">= listed")


def _ram(listing: Listing, measured: Measured) -> Check:
    listed = f"{listing.ram:.1f} GB" if listing.ram else None
    shown = None if measured.ram_gb is None else f"{measured.ram_gb:.1f} GB"
    if measured.ram_gb is None:
        return _check("ram", "warn", listed, None, "no MemTotal in /proc/meminfo")
    if listing.ram is None:
        return _check("ram", "skip", None, shown, "the listing gives no RAM")
    if measured.ram_gb < listing.ram * RAM_MIN:
        return _check(
            "ram",
            "fail",
            listed,
            shown,
            f"{measured.ram_gb / listing.ram:.0%} of listed (< {RAM_MIN:.0%})",
        )
    return _check("ram", "ok", listed, shown, f">= {RAM_MIN:.0%} of listed")


def _disk(listing: Listing, measured: Measured) -> Check:
    listed = f"{listing.disk_speed:.0f} MB/s" if listing.disk_speed else None
    disk = measured.disk
    if disk is None:
        return _check("disk_write", "skip", listed, None, "not run (no dd, or turned off)")
    if disk.mb_s is None:
        return _check("disk_write", "warn", listed, None, f"dd gave no figure: {disk.error}")
    mib = (disk.bytes or 0) // (1024 * 1024)
    shown = f"{disk.mb_s:.0f} MB/s"
    what = f"{mib} MiB written with fsync in {disk.seconds:.2f} s"
    if listing.disk_speed is None:
        return _check("disk_write", "ok", None, shown, what)
    if disk.mb_s < listing.disk_speed * DISK_WARN:
        return _check(
            "disk_write",
            "warn",
            listed,
            shown,
            f"{disk.mb_s / listing.disk_speed:.0%} of listed ({what})",
        )
    return _check("disk_write", "ok", listed, shown, what)


def _throughput(listing: Listing, measured: Measured) -> Check:
    load = measured.throughput
    if load is None:
        if measured.loader == "none":
            reason = "skipped: neither PyTorch nor CuPy importable, no gpu_burn"
        elif measured.loader in (None, "off"):
            reason = "skipped: no load was run"
        else:
            reason = f"skipped: {measured.loader} gave no output"
        return _check("throughput", "skip", None, None, reason)
    figures = {i: f for i, f in load.gflops.items() if f is not None}
    if not figures:
        return _check("throughput", "skip", None, None, f"skipped: {load.tool} gave no figure")
    shown = f"{_spread([f / 1000 for f in figures.values()], 'TFLOPS', 1)} ({load.tool})"
    model = listing.gpu or next((g.name for g in measured.gpus if g.name), "")
    peak = peak_fp32_gflops(model)
    missing = sorted(i for i in range(len(measured.gpus)) if i not in figures)
    fastest = max(figures.values())
    lagging = sorted(i for i, f in figures.items() if f < fastest * THROUGHPUT_SPREAD)
    if peak is None:
        listed = None
        verdict: Verdict = "skip"
        reason = f"no reference figure for {canonical_model(model) or 'this model'}"
    else:
        listed = f"{peak / 1000:.1f} TFLOPS peak FP32"
        index, worst = min(figures.items(), key=lambda item: item[1])
        ratio = worst / peak
        verdict = "fail" if ratio < THROUGHPUT_FAIL else "warn" if ratio < THROUGHPUT_OK else "ok"
        if verdict == "ok":
            reason = f"{ratio:.0%} of peak at worst (>= {THROUGHPUT_OK:.0%})"
        else:
            limit = THROUGHPUT_FAIL if verdict == "fail" else THROUGHPUT_OK
            reason = f"GPU {index}: {worst / 1000:.1f} TFLOPS, {ratio:.0%} of peak (< {limit:.0%})"
    notes: list[str] = []
    if lagging:
        notes.append(f"{_gpus(lagging)} under {THROUGHPUT_SPREAD:.0%} of the fastest")
    if missing:
        notes.append(f"no figure for {_gpus(missing)}")
    if notes and verdict in ("ok", "skip"):
        verdict = "warn"
        reason = "; ".join(notes)
    elif notes:
        reason = "; ".join([reason, *notes])
    return _check("throughput", verdict, listed, shown, reason)


_CHECKS: Final = (
    _gpu_count,
    _gpu_model,
    _gpu_memory,
    _gpu_health,
    _power_limit,
    _pcie_width,
    _pcie_gen,
    _cuda,
    _cpu_threads,
    _ram,
    _disk,
    _throughput,
)


def evaluate(listing: Listing, measured: Measured) -> list[Check]:
    """Every check but ``ssh`` (the caller's), in ``CHECK_NAMES`` order."""
    return [check(listing, measured) for check in _CHECKS]
