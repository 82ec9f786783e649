"""Reference FP32 throughput per GPU model, for the throughput check.

``peak_fp32_gflops(model)`` is the vendor's peak FP32 figure (boost clock, dense, no
tensor cores) of a model, looked up by its canonical name (``clore.market.models``), or
None for a model not in the table. Laptop parts are left out on purpose: the same name
covers power limits from 35 to 175 W, so no one figure is fair. Mining parts (CMP, P10x)
are left out too: their FP32 rate depends on the firmware.

Measured SGEMM rates reach 60-90 % of these peaks on a healthy card (``gpu_burn`` and a
PyTorch ``float32`` matmul alike), which is why the check's thresholds
(``checks.THROUGHPUT_OK``/``THROUGHPUT_FAIL``) sit well below 1.
"""

from __future__ import annotations

from typing import Final

from clore.market.models import canonical_model, matches_model

__all__ = ["PEAK_FP32_TFLOPS", "peak_fp32_gflops"]

#: Canonical model -> peak FP32 TFLOPS (public specifications).
PEAK_FP32_TFLOPS: Final[dict[str, float]] = {
    "RTX 5090": 104.8,
    "RTX 5080": 56.3,
    "RTX 4090": 82.6,
    "RTX 4090 D": 73.5,
    "RTX 4080 SUPER": 52.2,
    "RTX 4080": 48.7,
    "RTX 4070 Ti SUPER": 44.1,
    "RTX 4070 Ti": 40.1,
    "RTX 4070 SUPER": 35.5,
    "RTX 4070": 29.1,
    "RTX 4060 Ti": 22.1,
    "RTX 4060": 15.1,
    "RTX 3090 Ti": 40.0,
    "RTX 3090": 35.6,
    "RTX 3080 Ti": 34.1,
    "RTX 3080": 29.8,
    "RTX 3070 Ti": 21.7,
    "RTX 3070": 20.3,
    "RTX 3060 Ti": 16.2,
    "RTX 3060": 12.7,
    "RTX 2080 Ti": 13.4,
    "RTX 2080 SUPER": 11.2,
    "RTX 2080": 10.1,
    "RTX 2070 SUPER": 9.1,
    "RTX 2070": 7.5,
    "RTX 2060 SUPER": 7.2,
    "RTX 2060": 6.5,
    "GTX 1660 SUPER": 5.0,
    "GTX 1660 Ti": 5.4,
    "GTX 1660": 5.0,
    "GTX 1080 Ti": 11.3,
    "GTX 1080": 8.9,
    "GTX 1070 Ti": 8.2,
    "GTX 1070": 6.5,
    "GTX 1060 6GB": 4.4,
    "TITAN Xp": 12.1,
    "RTX A2000": 8.0,
    "RTX A4000": 19.2,
    "RTX A4500": 23.7,
    "RTX A5000": 27.8,
    "RTX A6000": 38.7,
    "RTX 4000 Ada": 26.7,
    "RTX 6000 Ada": 91.1,
    "L40S": 91.6,
    "L40": 90.5,
    "L4": 30.3,
    "A10": 31.2,
    "A40": 37.4,
    "A100": 19.5,
    "H100 PCIe": 51.2,
    "H100": 66.9,
    "Tesla V100": 15.7,
    "Tesla T4": 8.1,
}

# More specific names first: "H100 PCIe" before "H100", which matches every H100.
_ORDER: Final = sorted(PEAK_FP32_TFLOPS, key=lambda name: -len(name.split()))


def peak_fp32_gflops(model: str) -> float | None:
    """The peak FP32 rate of ``model`` (any spelling of a listing or ``nvidia-smi``) in
    Gflop/s, or None when the model is not in the table."""
    canonical = canonical_model(model)
    if not canonical:
        return None
    exact = PEAK_FP32_TFLOPS.get(canonical)
    if exact is not None:
        return exact * 1000.0
    for name in _ORDER:
        if matches_model(name, canonical):
            return PEAK_FP32_TFLOPS[name] * 1000.0
    return None
