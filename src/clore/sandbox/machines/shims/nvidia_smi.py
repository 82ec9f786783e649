"""A simulated ``nvidia-smi`` for a sandbox machine: the real tool's formats, the order's
delivered hardware (``$CLORE_SANDBOX_DIR/hardware.json``) and declared load.

Standalone (standard library only, Python 3.7+): the sandbox copies this file into the
machine's ``bin`` directory as ``nvidia-smi``. Supported: no arguments (the table),
``-L``, ``--query-gpu=FIELDS --format=csv[,noheader][,nounits]`` with ``-i``/``--id``,
``--query-compute-apps``, ``-q``, ``--version``, ``-h``. Unknown query fields print the
real tool's ``Field "x" is not a valid field to query.`` and exit 2.

Load model: every file in ``$CLORE_SANDBOX_DIR/load/`` declares load as
``util=PERCENT mem=MIB gpus=0,1 name=NAME pid=PID`` (each part optional; util 100, all
GPUs). A declaration counts while some process holds an ``flock`` on the file (``gpu-burn``
does) or for 10 seconds after the file was last written. A GPU's utilization is the sum of
the declarations covering it (at most 100); power, temperature, clocks, P-state and the
current PCIe generation follow it (idle: P8, gen 1, like real cards).
"""

# The layouts are printf formats column for column, as the real tool prints them.
# ruff: noqa: UP031
from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from typing import Any

FRESH_SECONDS = 10.0
NA = "[N/A]"
UNKNOWN_ERROR = "[Unknown Error]"

# canonical name -> (unit shown in the header, or ""); the order is --help-query-gpu's.
FIELDS = {
    "timestamp": "",
    "driver_version": "",
    "count": "",
    "name": "",
    "serial": "",
    "uuid": "",
    "pci.bus_id": "",
    "pci.domain": "",
    "pci.bus": "",
    "pci.device": "",
    "pcie.link.gen.current": "",
    "pcie.link.gen.max": "",
    "pcie.link.width.current": "",
    "pcie.link.width.max": "",
    "index": "",
    "display_mode": "",
    "display_active": "",
    "persistence_mode": "",
    "vbios_version": "",
    "fan.speed": "%",
    "pstate": "",
    "memory.total": "MiB",
    "memory.reserved": "MiB",
    "memory.used": "MiB",
    "memory.free": "MiB",
    "compute_mode": "",
    "compute_cap": "",
    "utilization.gpu": "%",
    "utilization.memory": "%",
    "temperature.gpu": "",
    "power.draw": "W",
    "power.limit": "W",
    "enforced.power.limit": "W",
    "power.default_limit": "W",
    "power.min_limit": "W",
    "power.max_limit": "W",
    "clocks.current.graphics": "MHz",
    "clocks.current.sm": "MHz",
    "clocks.current.memory": "MHz",
    "clocks.current.video": "MHz",
    "clocks.max.graphics": "MHz",
    "clocks.max.sm": "MHz",
    "clocks.max.memory": "MHz",
}
ALIASES = {
    "gpu_name": "name",
    "gpu_serial": "serial",
    "gpu_uuid": "uuid",
    "gpu_bus_id": "pci.bus_id",
    "clocks.gr": "clocks.current.graphics",
    "clocks.sm": "clocks.current.sm",
    "clocks.mem": "clocks.current.memory",
    "clocks.video": "clocks.current.video",
    "clocks.max.gr": "clocks.max.graphics",
    "clocks.max.mem": "clocks.max.memory",
}
# Readings a crashed GPU cannot give.
DYNAMIC = {
    "fan.speed",
    "pstate",
    "memory.used",
    "memory.free",
    "utilization.gpu",
    "utilization.memory",
    "temperature.gpu",
    "power.draw",
    "clocks.current.graphics",
    "clocks.current.sm",
    "clocks.current.memory",
    "clocks.current.video",
}
INVALID_ARGS = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n"


class Machine:
    """The hardware document plus the load declared right now."""

    def __init__(self, directory: str) -> None:
        with open(os.path.join(directory, "hardware.json"), encoding="utf-8") as handle:
            self.doc = json.load(handle)
        self.gpus = self.doc["gpus"]
        self.util = [0] * len(self.gpus)
        self.mem = [0] * len(self.gpus)
        self.procs: list[tuple[int, int, str, int]] = []
        load_dir = os.path.join(directory, "load")
        try:
            names = sorted(os.listdir(load_dir))
        except OSError:
            names = []
        for name in names:
            self._declare(os.path.join(load_dir, name))

    def _declare(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return
        try:
            text = os.read(fd, 4096).decode("utf-8", "replace")
            active = time.time() - os.fstat(fd).st_mtime < FRESH_SECONDS
            if not active:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except OSError:
                    active = True  # a process holds it: the declaration is live
        finally:
            os.close(fd)
        if not active:
            return
        parts = dict(p.split("=", 1) for p in text.split() if "=" in p)
        try:
            util = max(0, min(100, int(float(parts.get("util", "100")))))
            mem = max(0, int(float(parts.get("mem", "0"))))
            pid = int(parts.get("pid", "0"))
        except ValueError:
            return
        which = parts.get("gpus", "all")
        if which == "all":
            indices = list(range(len(self.gpus)))
        else:
            indices = [int(i) for i in which.split(",") if i.strip().isdigit()]
        for i in indices:
            if 0 <= i < len(self.gpus):
                self.util[i] = min(100, self.util[i] + util)
                self.mem[i] += mem
                if pid:
                    self.procs.append((i, pid, parts.get("name", "python"), mem))

    def value(self, field: str, i: int, units: bool) -> str:
        """One query field of GPU ``i`` as ``--format=csv`` prints it."""
        gpu = self.gpus[i]
        if gpu["error"] and field in DYNAMIC:
            return UNKNOWN_ERROR
        raw = self._raw(field, gpu, i)
        if raw is None:
            return NA
        unit = FIELDS[field]
        if not unit or not units:
            return str(raw)
        return f"{raw} {unit}"

    def _raw(self, field: str, gpu: dict[str, Any], i: int) -> object:
        util = self.util[i]
        busy = util > 0
        total = gpu["memory_mib"]
        used = min(total, 1 + self.mem[i])
        limit = gpu["power_limit"]
        if field == "timestamp":
            now = time.time()
            return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now)) + ".%03d" % (
                int(now * 1000) % 1000
            )
        simple = {
            "driver_version": self.doc["driver_version"],
            "count": len(self.gpus),
            "name": gpu["name"],
            "serial": None,
            "uuid": gpu["uuid"],
            "pci.bus_id": gpu["bus_id"],
            "pci.domain": "0x0000",
            "pci.bus": "0x%02X" % (i + 1),
            "pci.device": "0x00",
            "pcie.link.gen.current": gpu["pcie_gen_max"] if busy else 1,
            "pcie.link.gen.max": gpu["pcie_gen_max"],
            "pcie.link.width.current": gpu["pcie_width"],
            "pcie.link.width.max": gpu["pcie_width"],
            "index": i,
            "display_mode": "Disabled",
            "display_active": "Disabled",
            "persistence_mode": "Enabled",
            "vbios_version": "94.02.42.00.A9",
            "fan.speed": None if limit is None else 30 + util * 6 // 10,
            "pstate": "P2" if busy else "P8",
            "memory.total": total,
            "memory.reserved": 0,
            "memory.used": used,
            "memory.free": total - used,
            "compute_mode": "Default",
            "compute_cap": gpu["compute_cap"],
            "utilization.gpu": util,
            "utilization.memory": util * 3 // 4,
            "temperature.gpu": 34 + util * 4 // 10,
            "clocks.current.graphics": gpu["clock_sm_max"] if busy else 210,
            "clocks.current.sm": gpu["clock_sm_max"] if busy else 210,
            "clocks.current.memory": gpu["clock_mem_max"] if busy else 405,
            "clocks.current.video": 1950 if busy else 555,
            "clocks.max.graphics": gpu["clock_sm_max"],
            "clocks.max.sm": gpu["clock_sm_max"],
            "clocks.max.memory": gpu["clock_mem_max"],
        }
        if field in simple:
            return simple[field]
        if limit is None:
            return None  # a card that reports no power figures (laptops)
        idle = min(limit, 12 + limit * 0.04)
        power = {
            "power.draw": idle + (limit * 0.97 - idle) * util / 100,
            "power.limit": limit,
            "enforced.power.limit": limit,
            "power.default_limit": gpu["power_default"],
            "power.min_limit": min(limit, 100.0),
            "power.max_limit": max(limit, gpu["power_default"] * 1.2),
        }
        return "%.2f" % power[field]


def _out(text: str) -> None:
    sys.stdout.write(text)


def query_gpu(machine: Machine, fields_arg: str, fmt: str, ids: list[int]) -> int:
    options = [o.strip() for o in fmt.split(",") if o.strip()]
    if "csv" not in options or any(o not in ("csv", "noheader", "nounits") for o in options):
        _out(INVALID_ARGS)
        return 2
    names = [n.strip() for n in fields_arg.split(",") if n.strip()]
    canonical = []
    for name in names:
        known = ALIASES.get(name, name)
        if known not in FIELDS:
            _out(f'Field "{name}" is not a valid field to query.\n\n')
            return 2
        canonical.append(known)
    if not canonical:
        _out(INVALID_ARGS)
        return 2
    if "noheader" not in options:
        _out(", ".join(f"{f} [{FIELDS[f]}]" if FIELDS[f] else f for f in canonical) + "\n")
    units = "nounits" not in options
    for i in ids:
        _out(", ".join(machine.value(f, i, units) for f in canonical) + "\n")
    return 0


def list_gpus(machine: Machine, ids: list[int]) -> int:
    for i in ids:
        gpu = machine.gpus[i]
        _out(f"GPU {i}: {gpu['name']} (UUID: {gpu['uuid']})\n")
    return 0


def _cell_name(name: str) -> str:
    return name if len(name) <= 30 else name[:23] + " ..."


def table(machine: Machine, ids: list[int]) -> int:
    doc = machine.doc
    rule = "+" + "-" * 89 + "+"
    split = "+" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+"
    lines = [
        time.strftime("%a %b %e %H:%M:%S %Y") + "       ",
        rule,
        "| NVIDIA-SMI %-23sDriver Version: %-15sCUDA Version: %-9s|"
        % (doc["driver_version"], doc["driver_version"], doc["cuda_version"]),
        "|" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+",
        "| GPU  Name                 Persistence-M | Bus-Id          Disp.A "
        "| Volatile Uncorr. ECC |",
        "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage "
        "| GPU-Util  Compute M. |",
        "|                                         |                        "
        "|               MIG M. |",
        "|" + "=" * 41 + "+" + "=" * 24 + "+" + "=" * 22 + "|",
    ]
    for i in ids:
        gpu = machine.gpus[i]
        util = machine.util[i]
        used = min(gpu["memory_mib"], 1 + machine.mem[i])
        limit = gpu["power_limit"]
        if gpu["error"]:
            fan = temp = perf = usage = cap = shown_util = "ERR!"
        else:
            fan = "N/A" if limit is None else "%d%%" % (30 + util * 6 // 10)
            temp = "%dC" % (34 + util * 4 // 10)
            perf = "P2" if util else "P8"
            draw = machine.value("power.draw", i, False)
            usage = "N/A" if limit is None else "%dW" % round(float(draw))
            cap = "N/A" if limit is None else "%dW" % round(limit)
            shown_util = "%d%%" % util
        lines.append(
            "|%4d  %-31s%-3s |   %s%4s |%21s |"
            % (i, _cell_name(gpu["name"]), "On", gpu["bus_id"], "Off", "N/A")
        )
        lines.append(
            "|%4s   %3s    %-2s%16s / %5s |%11s / %9s |%8s%13s |"
            % (
                fan,
                temp,
                perf,
                usage,
                cap,
                "%dMiB" % used,
                "%dMiB" % gpu["memory_mib"],
                shown_util,
                "Default",
            )
        )
        lines.append("|%41s|%24s|%21s |" % ("", "", "N/A"))
        lines.append(split)
    procs = [p for p in machine.procs if p[0] in ids]
    lines += [
        " " * 89,
        rule,
        "| Processes:%78s|" % "",
        "|  GPU   GI   CI        PID   Type   Process name"
        "                              GPU Memory |",
        "|        ID   ID                                                 "
        "              Usage      |",
        "|" + "=" * 89 + "|",
    ]
    if not procs:
        lines.append("|  No running processes found%61s|" % "")
    for gpu_index, pid, name, mem in procs:
        lines.append(
            "|  %3d   N/A  N/A  %9d      C   %-43.43s%8s |" % (gpu_index, pid, name, "%dMiB" % mem)
        )
    lines.append(rule)
    _out("\n".join(lines) + "\n")
    return 0


def query_all(machine: Machine, ids: list[int]) -> int:
    doc = machine.doc
    row = "    %-38s: %s\n"
    out = [
        "\n==============NVSMI LOG==============\n\n",
        "%-42s: %s\n" % ("Timestamp", time.strftime("%a %b %e %H:%M:%S %Y")),
        "%-42s: %s\n" % ("Driver Version", doc["driver_version"]),
        "%-42s: %s\n\n" % ("CUDA Version", doc["cuda_version"]),
        "%-42s: %d\n" % ("Attached GPUs", len(machine.gpus)),
    ]
    for i in ids:
        gpu = machine.gpus[i]

        def v(field: str, i: int = i) -> str:
            return machine.value(field, i, True).strip("[]")

        out.append("GPU %s\n" % gpu["bus_id"])
        out += [
            row % ("Product Name", gpu["name"]),
            row % ("Persistence Mode", v("persistence_mode")),
            row % ("GPU UUID", gpu["uuid"]),
            row % ("Minor Number", i),
            row % ("VBIOS Version", v("vbios_version")),
            "    PCI\n",
            row % ("    Bus Id", gpu["bus_id"]),
            "        GPU Link Info\n",
            "            PCIe Generation\n",
            "                %-22s: %s\n" % ("Max", v("pcie.link.gen.max")),
            "                %-22s: %s\n" % ("Current", v("pcie.link.gen.current")),
            "            Link Width\n",
            "                %-22s: %sx\n" % ("Max", v("pcie.link.width.max")),
            "                %-22s: %sx\n" % ("Current", v("pcie.link.width.current")),
            row % ("Performance State", v("pstate")),
            "    FB Memory Usage\n",
            row % ("    Total", v("memory.total")),
            row % ("    Reserved", v("memory.reserved")),
            row % ("    Used", v("memory.used")),
            row % ("    Free", v("memory.free")),
            "    Utilization\n",
            row % ("    Gpu", v("utilization.gpu")),
            row % ("    Memory", v("utilization.memory")),
            "    Temperature\n",
            row % ("    GPU Current Temp", v("temperature.gpu") + " C"),
            "    GPU Power Readings\n",
            row % ("    Power Draw", v("power.draw")),
            row % ("    Current Power Limit", v("power.limit")),
            row % ("    Default Power Limit", v("power.default_limit")),
            "    Max Clocks\n",
            row % ("    Graphics", v("clocks.max.graphics")),
            row % ("    Memory", v("clocks.max.memory")),
            "\n",
        ]
    _out("".join(out))
    return 0


def _ids(machine: Machine, spec: str | None) -> list[int] | None:
    count = len(machine.gpus)
    if spec is None:
        return list(range(count))
    ids = []
    for part in spec.split(","):
        part = part.strip()
        match = [g["index"] for g in machine.gpus if part in (str(g["index"]), g["uuid"])]
        match += [g["index"] for g in machine.gpus if part and part == g["bus_id"]]
        if not match:
            return None
        ids.append(match[0])
    return ids


def main(argv: list[str], directory: str | None = None) -> int:
    """Run ``nvidia-smi ARGS`` against the machine in ``directory``; return the exit code."""
    directory = directory or os.environ.get("CLORE_SANDBOX_DIR") or "/run/clore-sandbox"
    opts: dict[str, str] = {}
    flags = set()
    args = list(argv)
    valued = {"--query-gpu", "--format", "--id", "-i", "--query-compute-apps"}
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name in valued:
            if not eq:
                if not args:
                    _out(INVALID_ARGS)
                    return 2
                value = args.pop(0)
            opts["--id" if name == "-i" else name] = value
        elif arg in ("-L", "--list-gpus", "-q", "--query", "-h", "--help", "--version"):
            flags.add({"--list-gpus": "-L", "--query": "-q", "--help": "-h"}.get(arg, arg))
        else:
            _out(INVALID_ARGS)
            return 2
    if "-h" in flags:
        _out(
            "NVIDIA System Management Interface -- simulated by clore sandbox\n\n"
            "    nvidia-smi [-L] [-q] [--query-gpu=FIELDS --format=csv[,noheader][,nounits]]"
            " [-i ID]\n"
        )
        return 0
    try:
        machine = Machine(directory)
    except (OSError, ValueError, KeyError):
        _out(
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.\n\n"
        )
        return 9
    if "--version" in flags:
        drv = machine.doc["driver_version"]
        _out(
            f"NVIDIA-SMI version  : {drv}\nNVML version        : {drv.rsplit('.', 1)[0]}\n"
            f"DRIVER version      : {drv}\nCUDA Version        : {machine.doc['cuda_version']}\n"
        )
        return 0
    if not machine.gpus:
        _out("No devices were found\n")
        return 6
    ids = _ids(machine, opts.get("--id"))
    if ids is None:
        _out("No devices were found\n")
        return 6
    if "--query-compute-apps" in opts:
        if "--format" not in opts:
            _out(INVALID_ARGS)
            return 2
        if "noheader" not in opts["--format"]:
            _out(opts["--query-compute-apps"].replace(",", ", ") + "\n")
        return 0
    if "--query-gpu" in opts:
        if "--format" not in opts:
            _out(INVALID_ARGS)
            return 2
        return query_gpu(machine, opts["--query-gpu"], opts["--format"], ids)
    if "--format" in opts:
        _out(INVALID_ARGS)
        return 2
    if "-L" in flags:
        return list_gpus(machine, ids)
    if "-q" in flags:
        return query_all(machine, ids)
    return table(machine, ids)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
