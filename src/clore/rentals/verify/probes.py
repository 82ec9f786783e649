"""What the probes measured (``Measured`` and its parts) and how the probe script's output
is read into it (``parse``). Pure: text in, typed facts out.

A value the machine could not give is None; a field a GPU reported as an error
(``[Unknown Error]``, ``[GPU is lost]``, ``ERR!``, or text that is not what the field
holds) is named in that GPU's ``unreadable``. ``[N/A]`` is not an error: cards that do not
report a figure (a laptop's power limit) say it.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from clore.rentals.verify.script import MATMUL_N, QUERY_FIELDS

__all__ = ["Disk", "GpuReading", "Measured", "Throughput", "parse", "sections"]

_BEGIN: Final = re.compile(r"^@@clore-verify begin (\w+)@@$")
_END: Final = re.compile(r"^@@clore-verify end (\w+) (-?\d+)@@$")
_CUDA: Final = re.compile(r"CUDA Version:\s*([0-9]+(?:\.[0-9]+)*)")
_DRIVER: Final = re.compile(r"Driver Version:\s*([0-9][0-9.]*)")
_TABLE_GPU: Final = re.compile(r"^\|\s*(\d+)\s{2}")
_DD: Final = re.compile(r"(\d+) bytes\b.*?copied,\s*([0-9.]+(?:e-?\d+)?)\s*s", re.I)
_GFLOPS: Final = re.compile(r"\((\d+(?:\.\d+)?) Gflop/s\)")
_BURN_VERDICT: Final = re.compile(r"^\s*GPU (\d+): (OK|FAULTY)\s*$")
_BURN_ERRORS: Final = re.compile(r"errors:\s*([0-9 \-]+?)\s{2,}")
_MEMTOTAL: Final = re.compile(r"^MemTotal:\s*(\d+)\s*kB", re.M)
_NOT_AVAILABLE: Final = frozenset({"[N/A]", "N/A", "[Not Supported]"})


class GpuReading(msgspec.Struct, frozen=True, kw_only=True):
    """One GPU's ``--query-gpu`` row (read under load when ``Measured.under_load``)."""

    index: int
    name: str
    memory_mib: float | None = None
    power_limit_w: float | None = None
    pcie_gen_max: int | None = None
    pcie_gen_current: int | None = None
    pcie_width_max: int | None = None
    pcie_width_current: int | None = None
    driver_version: str | None = None
    utilization: int | None = None
    unreadable: list[str] = msgspec.field(default_factory=list)


class Disk(msgspec.Struct, frozen=True, kw_only=True):
    """The disk write test: ``mb`` MiB written with fsync in ``seconds`` (``mb_s`` = MB/s,
    10^6 bytes), in ``path``; ``error`` when it ran but gave no figure."""

    path: str | None = None
    bytes: int | None = None
    seconds: float | None = None
    mb_s: float | None = None
    error: str | None = None


class Throughput(msgspec.Struct, frozen=True, kw_only=True):
    """The load's throughput: ``tool`` (``torch``, ``cupy`` or ``gpu_burn``), what it
    measures, Gflop/s per GPU index (None: no figure), GPUs it found faulty, errors."""

    tool: str
    what: str
    gflops: dict[int, float | None] = msgspec.field(default_factory=dict)
    faulty: list[int] = msgspec.field(default_factory=list)
    errors: dict[int, str] = msgspec.field(default_factory=dict)


class Measured(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the probes found. Exit codes are None when the section never ran."""

    smi_exit: int | None = None
    smi_output: str = ""
    cuda_version: str | None = None
    driver_version: str | None = None
    table_errors: list[int] = msgspec.field(default_factory=list)
    query_exit: int | None = None
    query_problem: str | None = None
    gpus: list[GpuReading] = msgspec.field(default_factory=list)
    under_load: bool = False
    loader: str | None = None
    cpu_threads: int | None = None
    ram_gb: float | None = None
    disk: Disk | None = None
    throughput: Throughput | None = None
    load_exit: int | None = None


def sections(output: str) -> dict[str, tuple[str, int | None]]:
    """``name -> (text, exit code)`` of each framed section (exit None: never ended)."""
    found: dict[str, tuple[str, int | None]] = {}
    name: str | None = None
    lines: list[str] = []
    for line in output.splitlines():
        begin = _BEGIN.match(line)
        end = _END.match(line)
        if begin:
            name, lines = begin.group(1), []
        elif end and name is not None and name == end.group(1):
            # ``end`` prints a newline first, so output without a final one stays whole.
            if lines and lines[-1] == "":
                lines.pop()
            found[name] = ("\n".join(lines), int(end.group(2)))
            name = None
        elif name is not None:
            lines.append(line)
    if name is not None:
        found[name] = ("\n".join(lines), None)
    return found


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _table_errors(table: str) -> list[int]:
    """Indices of GPUs whose table rows show ``ERR!`` (a GPU's block runs to the next rule)."""
    bad: list[int] = []
    current: int | None = None
    for line in table.splitlines():
        row = _TABLE_GPU.match(line)
        if row:
            current = int(row.group(1))
        elif line.startswith("+"):
            current = None
        if current is not None and "ERR!" in line and current not in bad:
            bad.append(current)
    return bad


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _int(text: str) -> int | None:
    return int(text) if re.fullmatch(r"\d{1,9}", text) else None


def _gpu_row(cells: list[str], position: int) -> GpuReading:
    values = dict(zip(QUERY_FIELDS, cells, strict=True))
    unreadable: list[str] = []

    def read(field: str, kind: str) -> float | int | str | None:
        text = values[field].strip()
        if text in _NOT_AVAILABLE:
            return None
        parsed: float | int | str | None
        if kind == "float":
            parsed = _float(text)
        elif kind == "int":
            parsed = _int(text)
        else:
            parsed = text if text and not text.startswith("[") and "ERR!" not in text else None
        if parsed is None:
            unreadable.append(field)
        return parsed

    index = read("index", "int")
    name = read("name", "str")
    reading = GpuReading(
        index=index if isinstance(index, int) else position,
        name=name if isinstance(name, str) else "",
        memory_mib=_as_float(read("memory.total", "float")),
        power_limit_w=_as_float(read("power.limit", "float")),
        pcie_gen_max=_as_int(read("pcie.link.gen.max", "int")),
        pcie_gen_current=_as_int(read("pcie.link.gen.current", "int")),
        pcie_width_max=_as_int(read("pcie.link.width.max", "int")),
        pcie_width_current=_as_int(read("pcie.link.width.current", "int")),
        driver_version=_as_str(read("driver_version", "str")),
        utilization=_as_int(read("utilization.gpu", "int")),
        unreadable=unreadable,
    )
    return reading


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _query(text: str) -> tuple[list[GpuReading], bool, str | None]:
    """The GPU rows, whether they were read under load, and a problem with the output."""
    gpus: list[GpuReading] = []
    loaded = False
    problem: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("loaded "):
            loaded = stripped == "loaded 1"
            continue
        cells = [cell.strip() for cell in stripped.split(",")]
        if len(cells) != len(QUERY_FIELDS):
            problem = problem or stripped[:200]
            continue
        gpus.append(_gpu_row(cells, len(gpus)))
    return gpus, loaded, problem


def _disk(text: str) -> Disk | None:
    if text.strip() in ("", "skipped"):
        return None
    path = None
    code: int | None = None
    for line in text.splitlines():
        if line.startswith("path "):
            path = line[5:].strip()
        elif re.fullmatch(r"rc -?\d+", line.strip()):
            code = int(line.split()[1])
    match = _DD.search(text)
    if match:
        size, seconds = int(match.group(1)), float(match.group(2))
        rate = size / seconds / 1e6 if seconds > 0 else None
        return Disk(path=path, bytes=size, seconds=seconds, mb_s=rate)
    if code == 124:
        return Disk(path=path, error="timed out after 30 s")
    lines = [
        line for line in text.splitlines() if line.strip() and not line.startswith(("path ", "rc "))
    ]
    return Disk(path=path, error=(lines[-1].strip() if lines else f"dd exited {code}")[:200])


def _matmul(text: str) -> Throughput:
    lib = "torch"
    gflops: dict[int, float | None] = {}
    errors: dict[int, str] = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0] == "lib":
            lib = parts[1]
        elif len(parts) == 3 and parts[0] == "matmul" and parts[1].isdigit():
            index = int(parts[1])
            value = _float(parts[2])
            gflops[index] = value
            if value is None:
                errors[index] = parts[2].removeprefix("error ").strip()[:200]
    name = "PyTorch" if lib == "torch" else "CuPy"
    return Throughput(
        tool=lib,
        what=f"{name} float32 matmul, one {MATMUL_N}x{MATMUL_N} product after another per GPU",
        gflops=gflops,
        errors=errors,
    )


def _gpu_burn(text: str) -> Throughput:
    gflops: dict[int, float | None] = {}
    faulty: list[int] = []
    errors: dict[int, str] = {}
    progress = [line for line in text.splitlines() if "Gflop/s" in line]
    if progress:
        for index, figure in enumerate(_GFLOPS.findall(progress[-1])):
            gflops[index] = float(figure)
        counts = _BURN_ERRORS.search(progress[-1] + "  ")
        if counts:
            for index, count in enumerate(c.strip() for c in counts.group(1).split(" - ")):
                if count.isdigit() and int(count) > 0:
                    errors[index] = f"{count} computation errors"
    for line in text.splitlines():
        verdict = _BURN_VERDICT.match(line)
        if verdict:
            index = int(verdict.group(1))
            gflops.setdefault(index, None)
            if verdict.group(2) == "FAULTY":
                faulty.append(index)
    return Throughput(
        tool="gpu_burn",
        what="gpu_burn's own figure (its float32 matrix multiplications), per GPU",
        gflops=gflops,
        faulty=faulty,
        errors=errors,
    )


def parse(output: str) -> Measured:
    """Read the probe script's whole output."""
    found = sections(output)
    smi_text, smi_exit = found.get("smi", ("", None))
    query_text, query_exit = found.get("gpu", ("", None))
    gpus, loaded, problem = _query(query_text) if query_exit == 0 else ([], False, None)
    if query_exit not in (0, None):
        problem = _first_line(query_text) or f"exit code {query_exit}"
    nproc_text, nproc_exit = found.get("nproc", ("", None))
    threads = _int(nproc_text.strip()) if nproc_exit == 0 else None
    meminfo_text, meminfo_exit = found.get("meminfo", ("", None))
    total = _MEMTOTAL.search(meminfo_text) if meminfo_exit == 0 else None
    loader = found.get("loader", ("", None))[0].strip() or None
    load_text, load_exit = found.get("load", ("", None))
    throughput: Throughput | None = None
    if loader == "python" and "load" in found:
        throughput = _matmul(load_text)
    elif loader == "gpu_burn" and "load" in found:
        throughput = _gpu_burn(load_text)
    cuda = _CUDA.search(smi_text)
    driver = _DRIVER.search(smi_text)
    return Measured(
        smi_exit=smi_exit,
        smi_output=smi_text[-4000:],
        cuda_version=cuda.group(1) if cuda else None,
        driver_version=driver.group(1) if driver else None,
        table_errors=_table_errors(smi_text) if smi_exit == 0 else [],
        query_exit=query_exit,
        query_problem=problem,
        gpus=gpus,
        under_load=loaded,
        loader=loader,
        cpu_threads=threads,
        ram_gb=int(total.group(1)) / (1024 * 1024) if total else None,
        disk=_disk(found["disk"][0]) if "disk" in found else None,
        throughput=throughput,
        load_exit=load_exit,
    )
