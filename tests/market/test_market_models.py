"""Exact GPU models: every GPU name of the real capture, its canonical model and the
model queries that match it."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from clore.market.models import canonical_model, gpu_count, matches_model

CAPTURE = (
    Path(__file__).resolve().parents[2] / "src/clore/sandbox/data/marketplace-snapshot-2024.json.gz"
)


def _capture_gpus() -> list[str]:
    with gzip.open(CAPTURE) as fh:
        servers = json.load(fh)["servers"]
    return sorted({server["specs"]["gpu"] for server in servers})


GPUS = _capture_gpus()

#: Every model text of the capture (the ``specs.gpu`` after its count), checked by hand.
CANONICAL = dict(
    [
        ("NVIDIA CMP 30HX", "CMP 30HX"),
        ("NVIDIA CMP 40HX", "CMP 40HX"),
        ("NVIDIA CMP 50HX", "CMP 50HX"),
        ("NVIDIA CMP 70HX", "CMP 70HX"),
        ("NVIDIA CMP 90HX", "CMP 90HX"),
        ("NVIDIA GeForce GTX 1060 3GB", "GTX 1060 3GB"),
        ("NVIDIA GeForce GTX 1060 6GB", "GTX 1060 6GB"),
        ("NVIDIA GeForce GTX 1070", "GTX 1070"),
        ("NVIDIA GeForce GTX 1070 Ti", "GTX 1070 Ti"),
        ("NVIDIA GeForce GTX 1080", "GTX 1080"),
        ("NVIDIA GeForce GTX 1080 Ti", "GTX 1080 Ti"),
        ("NVIDIA GeForce GTX 1650", "GTX 1650"),
        ("NVIDIA GeForce GTX 1660", "GTX 1660"),
        ("NVIDIA GeForce GTX 1660 SUPER", "GTX 1660 SUPER"),
        ("NVIDIA GeForce GTX 1660 Ti", "GTX 1660 Ti"),
        ("NVIDIA GeForce RTX 2060", "RTX 2060"),
        ("NVIDIA GeForce RTX 2060 SUPER", "RTX 2060 SUPER"),
        ("NVIDIA GeForce RTX 2070", "RTX 2070"),
        ("NVIDIA GeForce RTX 2070 SUPER", "RTX 2070 SUPER"),
        ("NVIDIA GeForce RTX 2080 SUPER", "RTX 2080 SUPER"),
        ("NVIDIA GeForce RTX 2080 Ti", "RTX 2080 Ti"),
        ("NVIDIA GeForce RTX 3060", "RTX 3060"),
        ("NVIDIA GeForce RTX 3060 Laptop GPU", "RTX 3060 Laptop"),
        ("NVIDIA GeForce RTX 3060 Ti", "RTX 3060 Ti"),
        ("NVIDIA GeForce RTX 3070", "RTX 3070"),
        ("NVIDIA GeForce RTX 3070 Laptop GPU", "RTX 3070 Laptop"),
        ("NVIDIA GeForce RTX 3070 Ti", "RTX 3070 Ti"),
        ("NVIDIA GeForce RTX 3070 Ti Laptop GPU", "RTX 3070 Ti Laptop"),
        ("NVIDIA GeForce RTX 3080", "RTX 3080"),
        ("NVIDIA GeForce RTX 3080 Laptop GPU", "RTX 3080 Laptop"),
        ("NVIDIA GeForce RTX 3080 Ti", "RTX 3080 Ti"),
        ("NVIDIA GeForce RTX 3090", "RTX 3090"),
        ("NVIDIA GeForce RTX 3090 Ti", "RTX 3090 Ti"),
        ("NVIDIA GeForce RTX 4060", "RTX 4060"),
        ("NVIDIA GeForce RTX 4060 Ti", "RTX 4060 Ti"),
        ("NVIDIA GeForce RTX 4070", "RTX 4070"),
        ("NVIDIA GeForce RTX 4070 SUPER", "RTX 4070 SUPER"),
        ("NVIDIA GeForce RTX 4070 Ti", "RTX 4070 Ti"),
        ("NVIDIA GeForce RTX 4070 Ti SUPER", "RTX 4070 Ti SUPER"),
        ("NVIDIA GeForce RTX 4080", "RTX 4080"),
        ("NVIDIA GeForce RTX 4080 SUPER", "RTX 4080 SUPER"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("NVIDIA GeForce RTX 4090 Laptop GPU", "RTX 4090 Laptop"),
        ("NVIDIA Graphics Device", "Graphics Device"),
        ("NVIDIA P102100", "P102100"),
        ("NVIDIA P104100", "P104100"),
        ("NVIDIA P106090", "P106090"),
        ("NVIDIA P106100", "P106100"),
        ("NVIDIA RTX A2000", "RTX A2000"),
        ("NVIDIA RTX A2000 12GB", "RTX A2000 12GB"),
        ("NVIDIA RTX A4000", "RTX A4000"),
        ("NVIDIA RTX A4500", "RTX A4500"),
        ("NVIDIA RTX A5000", "RTX A5000"),
        ("NVIDIA RTX A5000 Laptop GPU", "RTX A5000 Laptop"),
        ("NVIDIA RTX A6000", "RTX A6000"),
        ("NVIDIA TITAN RTX", "TITAN RTX"),
        ("NVIDIA TITAN Xp", "TITAN Xp"),
        ("Quadro P620", "Quadro P620"),
        ("Quadro RTX 4000", "Quadro RTX 4000"),
        ("Tesla P40", "Tesla P40"),
    ]
)

MODELS = sorted(set(CANONICAL.values()))

#: Model queries and exactly the capture's models each one matches.
QUERIES: dict[str, set[str]] = {
    "4090": {"RTX 4090"},
    "RTX 4090": {"RTX 4090"},
    "NVIDIA GeForce RTX 4090": {"RTX 4090"},
    "rtx4090": {"RTX 4090"},
    "RTX3060Ti": {"RTX 3060 Ti"},
    "gtx1080ti": {"GTX 1080 Ti"},
    "4090 laptop": {"RTX 4090 Laptop"},
    "3060": {"RTX 3060"},
    "3060 Ti": {"RTX 3060 Ti"},
    "3060ti": {"RTX 3060 Ti"},
    "3060 Laptop": {"RTX 3060 Laptop"},
    "3070 Ti": {"RTX 3070 Ti"},
    "3070 Ti Laptop": {"RTX 3070 Ti Laptop"},
    "4070": {"RTX 4070"},
    "4070 super": {"RTX 4070 SUPER"},
    "4070 Ti SUPER": {"RTX 4070 Ti SUPER"},
    "1060": {"GTX 1060 3GB", "GTX 1060 6GB"},
    "GTX 1060 3GB": {"GTX 1060 3GB"},
    "1660 super": {"GTX 1660 SUPER"},
    "A2000": {"RTX A2000", "RTX A2000 12GB"},
    "A2000 12gb": {"RTX A2000 12GB"},
    "A5000": {"RTX A5000"},
    "4000": {"Quadro RTX 4000"},
    "RTX 4000": {"Quadro RTX 4000"},
    "P620": {"Quadro P620"},
    "P102-100": {"P102100"},
    "30HX": {"CMP 30HX"},
    "P40": {"Tesla P40"},
    "Titan RTX": {"TITAN RTX"},
    "Titan Xp": {"TITAN Xp"},
    "Xp": set(),
    "RTX": set(),
    "GTX 4090": set(),
    "": set(),
}


def test_the_table_covers_every_model_of_the_capture() -> None:
    """Each model text in the capture has a row in the table, and no row is stale."""
    texts = {re.sub(r"^\d+x ", "", gpu) for gpu in GPUS}
    assert set(CANONICAL) == texts


@pytest.mark.parametrize("gpu", GPUS)
def test_every_capture_gpu_string_has_its_canonical_model(gpu: str) -> None:
    """``8x NVIDIA GeForce RTX 3090`` -> ``RTX 3090``, for all 333 strings of the capture."""
    count, text = re.match(r"^(\d+)x (.*)$", gpu).groups()  # type: ignore[union-attr]
    assert (CANONICAL[text], int(count)) == (canonical_model(gpu), gpu_count(gpu))


@pytest.mark.parametrize("query", list(QUERIES))
def test_each_query_matches_exactly_its_models(query: str) -> None:
    """A query matches a model, not a substring: 4090 is not 4090 Laptop, 3060 no laptop."""
    assert QUERIES[query] == {model for model in MODELS if matches_model(query, model)}


@pytest.mark.parametrize("model", MODELS)
def test_a_canonical_name_matches_itself_and_only_its_variants(model: str) -> None:
    """Every model's own name selects it, and nothing but its memory sizes."""
    matched = {other for other in MODELS if matches_model(model, other)}
    expected = {"RTX A2000", "RTX A2000 12GB"} if model == "RTX A2000" else {model}
    assert expected == matched


@pytest.mark.parametrize(
    ("gpu", "model"),
    [
        ("1x RTX 4090 D", "RTX 4090 D"),
        ("NVIDIA GeForce RTX 4090D", "RTX 4090 D"),
        ("A100-SXM4-80GB", "A100 SXM4 80GB"),
        ("NVIDIA A100-PCIE-40GB", "A100 PCIe 40GB"),
        ("NVIDIA A100 80GB PCIe", "A100 PCIe 80GB"),
        ("NVIDIA H100 80GB HBM3", "H100 HBM3 80GB"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("Tesla V100-SXM2-16GB", "Tesla V100 SXM2 16GB"),
        ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada"),
        ("NVIDIA GeForce RTX 3080 Laptop GPU with Max-Q Design", "RTX 3080 Laptop Max-Q"),
        ("AMD Radeon RX 7900 XTX", "RX 7900 XTX"),
        ("2x NVIDIA GeForce RTX 5090", "RTX 5090"),
        ("NVIDIA", "NVIDIA"),
        ("", ""),
    ],
)
def test_names_beyond_the_capture_have_a_canonical_model(gpu: str, model: str) -> None:
    """Data-centre parts, D variants and Max-Q laptops get one spelling too."""
    assert model == canonical_model(gpu)


@pytest.mark.parametrize(
    ("query", "model", "matches"),
    [
        ("4090", "RTX 4090 D", False),
        ("4090 D", "RTX 4090 D", True),
        ("A100", "A100 SXM4 80GB", True),
        ("A100", "A100 PCIe 40GB", True),
        ("a100 80gb", "A100 SXM4 80GB", True),
        ("A100 40GB", "A100 SXM4 80GB", False),
        ("A100 PCIe", "A100 SXM4 80GB", False),
        ("H100", "H100 HBM3 80GB", True),
        ("H100", "H100 NVL", False),
        ("V100", "Tesla V100 SXM2 16GB", True),
        ("6000", "RTX 6000 Ada", False),
        ("3080 laptop", "RTX 3080 Laptop Max-Q", False),
        ("7900 XTX", "RX 7900 XTX", True),
        ("7900", "RX 7900 XTX", False),
    ],
)
def test_variants_and_qualifiers_beyond_the_capture(query: str, model: str, matches: bool) -> None:
    """Memory size and form factor may be left out of a query; a variant word may not."""
    assert matches == matches_model(query, model)


def test_gpu_count_reads_the_prefix() -> None:
    """No prefix is one GPU; an empty string is none."""
    assert (gpu_count("8x RTX 3090"), gpu_count("RTX 3090"), gpu_count("")) == (8, 1, 0)
