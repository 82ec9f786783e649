"""The hardware a machine reports: a listing (plus a lying host's ``Delivers``) turned into
the facts ``nvidia-smi``, ``nproc``, ``gpu-burn`` and ``/proc/meminfo`` show inside it.

Pure functions. ``hardware(spec)`` is the JSON document written to the order's
``run/hardware.json``; the shims (``nvidia_smi.py``, ``gpu_burn.py``) read only that file.
The per-model tables hold what the real tools print for common cards (memory as
``nvidia-smi`` reports it, stock power limit, boost clocks, FP32 throughput); a model
not in them gets figures derived from the listing.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, NamedTuple

from clore.sandbox.machines.spec import MachineSpec

__all__ = [
    "DRIVER_FOR_CUDA",
    "GpuModel",
    "compute_cap",
    "hardware",
    "meminfo",
    "model_facts",
]

#: Hardware document version; the shims refuse a document they do not know.
FORMAT: Final = 1


class GpuModel(NamedTuple):
    """What one card model reports: memory (MiB), stock power (W), clocks (MHz), TFLOPS."""

    memory_mib: int
    power_w: float
    sm_mhz: int
    mem_mhz: int
    tflops: float


_MODELS: Final[dict[str, GpuModel]] = {
    "GeForce RTX 5090": GpuModel(32607, 575, 2407, 14001, 104.8),
    "GeForce RTX 4090": GpuModel(24564, 450, 2520, 10501, 82.6),
    "GeForce RTX 4080 SUPER": GpuModel(16376, 320, 2550, 11501, 52.2),
    "GeForce RTX 4080": GpuModel(16376, 320, 2505, 11201, 48.7),
    "GeForce RTX 4070 Ti SUPER": GpuModel(16376, 285, 2610, 10501, 44.1),
    "GeForce RTX 4070 Ti": GpuModel(12282, 285, 2610, 10501, 40.1),
    "GeForce RTX 4070 SUPER": GpuModel(12282, 220, 2475, 10501, 35.5),
    "GeForce RTX 4070": GpuModel(12282, 200, 2475, 10501, 29.1),
    "GeForce RTX 4060 Ti": GpuModel(8188, 160, 2535, 9001, 22.1),
    "GeForce RTX 4060": GpuModel(8188, 115, 2460, 8501, 15.1),
    "GeForce RTX 3090 Ti": GpuModel(24564, 450, 2100, 10501, 40.0),
    "GeForce RTX 3090": GpuModel(24576, 350, 2100, 9751, 35.6),
    "GeForce RTX 3080 Ti": GpuModel(12288, 350, 2100, 9501, 34.1),
    "GeForce RTX 3080": GpuModel(10240, 320, 2100, 9501, 29.8),
    "GeForce RTX 3070 Ti": GpuModel(8192, 290, 2100, 9501, 21.7),
    "GeForce RTX 3070": GpuModel(8192, 220, 2100, 7001, 20.3),
    "GeForce RTX 3060 Ti": GpuModel(8192, 200, 2100, 7001, 16.2),
    "GeForce RTX 3060": GpuModel(12288, 170, 2100, 7501, 12.7),
    "GeForce RTX 3080 Laptop GPU": GpuModel(8192, 0, 1710, 7001, 18.9),
    "GeForce RTX 3070 Laptop GPU": GpuModel(8192, 0, 1620, 7001, 15.9),
    "GeForce RTX 3060 Laptop GPU": GpuModel(6144, 0, 1702, 7001, 10.9),
    "GeForce RTX 2080 Ti": GpuModel(11264, 250, 2100, 7000, 13.4),
    "GeForce RTX 2070 SUPER": GpuModel(8192, 215, 2100, 7001, 9.1),
    "GeForce RTX 2060 SUPER": GpuModel(8192, 175, 2100, 7001, 7.2),
    "GeForce RTX 2060": GpuModel(6144, 160, 2100, 7001, 6.5),
    "GeForce GTX 1660 SUPER": GpuModel(6144, 125, 2100, 7001, 5.0),
    "GeForce GTX 1660 Ti": GpuModel(6144, 120, 2100, 6001, 5.4),
    "GeForce GTX 1080 Ti": GpuModel(11264, 250, 1911, 5505, 11.3),
    "GeForce GTX 1080": GpuModel(8192, 180, 1911, 5005, 8.9),
    "GeForce GTX 1070 Ti": GpuModel(8192, 180, 1911, 4004, 8.2),
    "GeForce GTX 1070": GpuModel(8192, 150, 1911, 4004, 6.5),
    "GeForce GTX 1060 6GB": GpuModel(6144, 120, 1911, 4004, 4.4),
    "TITAN Xp": GpuModel(12288, 250, 1911, 5705, 12.1),
    "RTX A4000": GpuModel(16376, 140, 1560, 7001, 19.2),
    "RTX A5000": GpuModel(24564, 230, 2100, 8001, 27.8),
    "RTX A6000": GpuModel(49140, 300, 2100, 8001, 38.7),
    "CMP 90HX": GpuModel(10240, 320, 1710, 9501, 21.9),
    "CMP 50HX": GpuModel(10240, 250, 1650, 7001, 10.0),
    "CMP 40HX": GpuModel(8192, 185, 1650, 7001, 7.6),
    "CMP 30HX": GpuModel(6144, 125, 1785, 7001, 5.0),
    "P106100": GpuModel(6144, 120, 1708, 4004, 4.4),
    "P104100": GpuModel(8192, 217, 1733, 5005, 6.5),
    "P102100": GpuModel(10240, 250, 1683, 5005, 10.8),
    "A100-SXM4-80GB": GpuModel(81920, 400, 1410, 1593, 19.5),
    "A100-SXM4-40GB": GpuModel(40960, 400, 1410, 1215, 19.5),
    "H100 80GB HBM3": GpuModel(81559, 700, 1980, 2619, 66.9),
    "L40S": GpuModel(46068, 350, 2520, 9001, 91.6),
    "L4": GpuModel(23034, 72, 2040, 6251, 30.3),
}

#: The driver each CUDA version comes with (the header of ``nvidia-smi`` shows both).
DRIVER_FOR_CUDA: Final[dict[str, str]] = {
    "11.4": "470.256.02",
    "11.6": "510.108.03",
    "11.7": "515.105.01",
    "11.8": "520.61.05",
    "12.0": "525.147.05",
    "12.1": "530.41.03",
    "12.2": "535.183.01",
    "12.3": "545.29.06",
    "12.4": "550.54.15",
    "12.5": "555.58.02",
    "12.6": "560.35.03",
    "12.7": "565.77",
    "12.8": "570.124.04",
}
_DEFAULT_CUDA: Final = "12.4"


def model_facts(name: str) -> GpuModel | None:
    """The table entry for a model name ("NVIDIA GeForce RTX 4090" or without "NVIDIA ")."""
    key = name.strip()
    key = key[len("NVIDIA ") :] if key.startswith("NVIDIA ") else key
    return _MODELS.get(key)


_COMPUTE_CAPS: Final = (
    ("RTX 50", "12.0"),
    ("RTX 40", "8.9"),
    ("L40", "8.9"),
    ("L4", "8.9"),
    ("Ada", "8.9"),
    ("H100", "9.0"),
    ("H200", "9.0"),
    ("A100", "8.0"),
    ("RTX 30", "8.6"),
    ("RTX A", "8.6"),
    ("CMP 90HX", "8.6"),
    ("CMP 70HX", "8.6"),
    ("V100", "7.0"),
    ("RTX 20", "7.5"),
    ("GTX 16", "7.5"),
    ("TITAN RTX", "7.5"),
    ("T4", "7.5"),
    ("CMP", "7.5"),
    ("GTX 10", "6.1"),
    ("TITAN X", "6.1"),
    ("P10", "6.1"),
)


def compute_cap(name: str) -> str:
    """The CUDA compute capability of a model, from its family ("8.6" for an RTX 3080)."""
    return next((cap for part, cap in _COMPUTE_CAPS if part in name), "8.6")


def _memory_mib(model: GpuModel | None, gpuram_gb: float, delivered: bool) -> int:
    # The table's figure when it agrees with the listing (a 4090 lists 24 GB and reports
    # 24564 MiB); a lying host's gpuram, or an unknown card, reports the listing exactly.
    if model is not None and not delivered and round(model.memory_mib / 1024) == round(gpuram_gb):
        return model.memory_mib
    return max(1, round(gpuram_gb * 1024))


def _uuid(order_id: int, index: int) -> str:
    digest = hashlib.sha256(f"clore-sandbox-gpu:{order_id}:{index}".encode()).hexdigest()
    return f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def hardware(spec: MachineSpec) -> dict[str, Any]:
    """The hardware document of ``spec``'s machine: what it lists, unless it lies."""
    lie = spec.delivers
    name = lie.gpu.strip() if lie.gpu else spec.gpu
    count = spec.gpu_count if lie.gpu_count is None else lie.gpu_count
    model = model_facts(name)
    gpuram = spec.gpuram if lie.gpuram is None else lie.gpuram
    if gpuram <= 0:
        gpuram = (model.memory_mib / 1024) if model else 8.0
    memory = _memory_mib(model, gpuram, lie.gpuram is not None)
    width = lie.pcie_width or spec.pcie_width or 16
    gen = lie.pcie_gen or spec.pcie_rev or 3
    cuda = spec.cuda_version or _DEFAULT_CUDA
    stock = model.power_w if model else 250.0
    gpus: list[dict[str, Any]] = []
    for index in range(count):
        if lie.power_limit is not None:
            limit: float | None = lie.power_limit
        elif spec.pl:
            limit = spec.pl[min(index, len(spec.pl) - 1)]
        else:
            limit = stock or None
        if not limit:
            limit = None  # a 0 in the listing is a card that reports no limit (laptops)
        gpus.append(
            {
                "index": index,
                "name": name,
                "uuid": _uuid(spec.order_id, index),
                "bus_id": f"00000000:{index + 1:02X}:00.0",
                "memory_mib": memory,
                "power_limit": limit,
                "power_default": stock or limit,
                "pcie_gen_max": gen,
                "pcie_width": width,
                "clock_sm_max": model.sm_mhz if model else 1800,
                "clock_mem_max": model.mem_mhz if model else 7001,
                "compute_cap": compute_cap(name),
                "gflops": round((model.tflops if model else 10.0) * 1000 * 0.72),
                "error": lie.gpu_error and index == count - 1,
            }
        )
    return {
        "format": FORMAT,
        "order_id": spec.order_id,
        "driver_version": DRIVER_FOR_CUDA.get(cuda, DRIVER_FOR_CUDA[_DEFAULT_CUDA]),
        "cuda_version": cuda,
        "cpus": spec.cpus or 1,
        "ram_gb": spec.ram or 1.0,
        "slow": lie.slow,
        "gpus": gpus,
    }


def meminfo(ram_gb: float) -> str:
    """A ``/proc/meminfo`` for a machine with ``ram_gb`` GB (GiB, as the listing measures)."""
    total = max(1, round(ram_gb * 1024 * 1024))
    free = total * 9 // 10
    rows = [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", free),
        ("Buffers", 0),
        ("Cached", total // 20),
        ("SwapCached", 0),
        ("Active", total // 20),
        ("Inactive", total // 40),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Shmem", 0),
        ("SReclaimable", 0),
    ]
    return "".join(f"{key + ':':<16}{value:>8} kB\n" for key, value in rows)
