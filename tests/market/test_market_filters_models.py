"""The ``gpu`` filter over every GPU model of the real capture: for each model name, which
filter words match it (``=`` an exact model, ``~`` a substring, ``!=``/``!~`` their
negations)."""

from __future__ import annotations

import re

import msgspec
import pytest

from clore._wire import MarketplaceResponse, Server
from clore.market import PriceContext, parse_filter
from clore.sandbox import snapshot_bytes

CTX = PriceContext("bitcoin")


def _capture_servers() -> dict[str, Server]:
    """One server of the capture per model text (the ``specs.gpu`` after its count)."""
    servers = msgspec.json.decode(snapshot_bytes(), type=MarketplaceResponse, strict=False)
    first: dict[str, Server] = {}
    for server in servers.servers:
        first.setdefault(re.sub(r"^\d+x ", "", server.specs.gpu), server)
    return first


SERVERS = _capture_servers()

#: The positive filter words of the table (their negations are checked as complements).
WORDS = (
    "gpu=4090",
    "gpu=4090 laptop",
    "gpu~4090",
    "gpu=3060",
    "gpu=3060 ti",
    "gpu=3060 laptop",
    "gpu~3060",
    "gpu=3070 ti",
    "gpu~laptop",
    "gpu=4070",
    "gpu=4070 ti",
    "gpu=4070 super",
    "gpu=1060",
    "gpu=1060 6gb",
    "gpu=a2000",
    "gpu=a5000",
    "gpu=rtx 4000",
    "gpu=titan rtx",
    "gpu=p102-100",
    "gpu=30hx",
    "gpu=p40",
    "gpu~cmp",
    "gpu=3090,4090",
)

#: Every model text of the capture and the words of ``WORDS`` that match it.
TABLE: dict[str, set[str]] = {
    "NVIDIA CMP 30HX": {"gpu=30hx", "gpu~cmp"},
    "NVIDIA CMP 40HX": {"gpu~cmp"},
    "NVIDIA CMP 50HX": {"gpu~cmp"},
    "NVIDIA CMP 70HX": {"gpu~cmp"},
    "NVIDIA CMP 90HX": {"gpu~cmp"},
    "NVIDIA GeForce GTX 1060 3GB": {"gpu=1060"},
    "NVIDIA GeForce GTX 1060 6GB": {"gpu=1060", "gpu=1060 6gb"},
    "NVIDIA GeForce GTX 1070": set(),
    "NVIDIA GeForce GTX 1070 Ti": set(),
    "NVIDIA GeForce GTX 1080": set(),
    "NVIDIA GeForce GTX 1080 Ti": set(),
    "NVIDIA GeForce GTX 1650": set(),
    "NVIDIA GeForce GTX 1660": set(),
    "NVIDIA GeForce GTX 1660 SUPER": set(),
    "NVIDIA GeForce GTX 1660 Ti": set(),
    "NVIDIA GeForce RTX 2060": set(),
    "NVIDIA GeForce RTX 2060 SUPER": set(),
    "NVIDIA GeForce RTX 2070": set(),
    "NVIDIA GeForce RTX 2070 SUPER": set(),
    "NVIDIA GeForce RTX 2080 SUPER": set(),
    "NVIDIA GeForce RTX 2080 Ti": set(),
    "NVIDIA GeForce RTX 3060": {"gpu=3060", "gpu~3060"},
    "NVIDIA GeForce RTX 3060 Laptop GPU": {"gpu=3060 laptop", "gpu~3060", "gpu~laptop"},
    "NVIDIA GeForce RTX 3060 Ti": {"gpu=3060 ti", "gpu~3060"},
    "NVIDIA GeForce RTX 3070": set(),
    "NVIDIA GeForce RTX 3070 Laptop GPU": {"gpu~laptop"},
    "NVIDIA GeForce RTX 3070 Ti": {"gpu=3070 ti"},
    "NVIDIA GeForce RTX 3070 Ti Laptop GPU": {"gpu~laptop"},
    "NVIDIA GeForce RTX 3080": set(),
    "NVIDIA GeForce RTX 3080 Laptop GPU": {"gpu~laptop"},
    "NVIDIA GeForce RTX 3080 Ti": set(),
    "NVIDIA GeForce RTX 3090": {"gpu=3090,4090"},
    "NVIDIA GeForce RTX 3090 Ti": set(),
    "NVIDIA GeForce RTX 4060": set(),
    "NVIDIA GeForce RTX 4060 Ti": set(),
    "NVIDIA GeForce RTX 4070": {"gpu=4070"},
    "NVIDIA GeForce RTX 4070 SUPER": {"gpu=4070 super"},
    "NVIDIA GeForce RTX 4070 Ti": {"gpu=4070 ti"},
    "NVIDIA GeForce RTX 4070 Ti SUPER": set(),
    "NVIDIA GeForce RTX 4080": set(),
    "NVIDIA GeForce RTX 4080 SUPER": set(),
    "NVIDIA GeForce RTX 4090": {"gpu=4090", "gpu~4090", "gpu=3090,4090"},
    "NVIDIA GeForce RTX 4090 Laptop GPU": {"gpu=4090 laptop", "gpu~4090", "gpu~laptop"},
    "NVIDIA Graphics Device": set(),
    "NVIDIA P102100": {"gpu=p102-100"},
    "NVIDIA P104100": set(),
    "NVIDIA P106090": set(),
    "NVIDIA P106100": set(),
    "NVIDIA RTX A2000": {"gpu=a2000"},
    "NVIDIA RTX A2000 12GB": {"gpu=a2000"},
    "NVIDIA RTX A4000": set(),
    "NVIDIA RTX A4500": set(),
    "NVIDIA RTX A5000": {"gpu=a5000"},
    "NVIDIA RTX A5000 Laptop GPU": {"gpu~laptop"},
    "NVIDIA RTX A6000": set(),
    "NVIDIA TITAN RTX": {"gpu=titan rtx"},
    "NVIDIA TITAN Xp": set(),
    "Quadro P620": set(),
    "Quadro RTX 4000": {"gpu=rtx 4000"},
    "Tesla P40": {"gpu=p40"},
}

FILTERS = {word: parse_filter(word) for word in WORDS}


def test_the_table_has_a_row_for_every_model_of_the_capture() -> None:
    """Every model text of the capture is in the table, and every row is in the capture."""
    assert set(SERVERS) == set(TABLE)


@pytest.mark.parametrize("model", sorted(TABLE))
def test_each_model_of_the_capture_matches_exactly_its_filters(model: str) -> None:
    """gpu= selects a model (4090 is not the laptop part, 3060 never a laptop), gpu~ a text."""
    server = SERVERS[model]
    assert TABLE[model] == {word for word, flt in FILTERS.items() if flt(server, CTX)}


@pytest.mark.parametrize("model", sorted(TABLE))
def test_the_negations_are_the_complements(model: str) -> None:
    """gpu!=X matches exactly where gpu=X does not, gpu!~X where gpu~X does not."""
    server = SERVERS[model]
    for word, flt in FILTERS.items():
        negated = parse_filter(word.replace("=", "!=", 1).replace("~", "!~", 1))
        assert (word, not flt(server, CTX)) == (word, negated(server, CTX))


def test_the_headline_filter_keeps_only_desktop_rtx_4090s_of_the_capture() -> None:
    """Over all 3,500 servers, gpu=4090 keeps exactly the GeForce RTX 4090 listings."""
    servers = msgspec.json.decode(snapshot_bytes(), type=MarketplaceResponse, strict=False)
    flt = parse_filter("gpu=4090")
    kept = {s.specs.gpu for s in servers.servers if flt(s, CTX)}
    assert {gpu for gpu in kept if not gpu.endswith("x NVIDIA GeForce RTX 4090")} == set()
    assert {f"{n}x NVIDIA GeForce RTX 4090" for n in (1, 2, 4, 8)} <= kept
