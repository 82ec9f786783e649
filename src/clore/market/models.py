"""Exact GPU models: a listing's ``specs.gpu`` text as one canonical model name, and matching.

``canonical_model("8x NVIDIA GeForce RTX 3090") == "RTX 3090"``: the count prefix and the
vendor words (``NVIDIA``, ``GeForce``, ``AMD``, ``Radeon``, ``Intel``) go, ``Laptop GPU``
becomes ``Laptop``, dashes that join qualifiers become spaces (``A100-SXM4-80GB`` ->
``A100 SXM4 80GB``), memory sizes move to the end and ``Ti``/``SUPER`` get one spelling.

A canonical name is made of three kinds of word:

* **family** words (``RTX``, ``GTX``, ``Quadro``, ``Tesla``, ``CMP``, ``RX``, ...) at the
  start: a query may leave them out (``4090`` = ``RTX 4090``; ``A4000`` = ``RTX A4000``),
  but the ones it names must be there (``GTX 4090`` matches nothing);
* **qualifiers**: memory size (``80GB``), form factor (``SXM4``, ``PCIe``) and memory type
  (``HBM3``). A query may leave them out (``A100`` matches every A100) or name some of them
  (``A100 80GB``), in any order;
* **model** words (the rest: ``4090``, ``Ti``, ``SUPER``, ``D``, ``Laptop``, ``NVL``, ...).
  These must be exactly the query's: ``4090`` matches ``RTX 4090`` but neither
  ``RTX 4090 D`` nor ``RTX 4090 Laptop``; ``3060`` never matches a laptop part.

Words compare case-insensitively with dashes removed (``P102-100`` = ``P102100``); a family
written against its number is split (``rtx4090`` = ``RTX 4090``, ``3060ti`` = ``3060 Ti``).

Pure: no I/O, no msgspec.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

__all__ = ["FAMILY_WORDS", "canonical_model", "gpu_count", "matches_model", "model_words"]

_COUNT_RE: Final = re.compile(r"^\s*([0-9]{1,6})\s*[xX×]\s+(.*)$")

#: Vendor words, dropped from the name.
_VENDORS: Final = frozenset({"nvidia", "geforce", "amd", "radeon", "intel", "ati"})

#: Words naming a product family; a query may omit them.
FAMILY_WORDS: Final = frozenset(
    {"rtx", "gtx", "gt", "quadro", "tesla", "cmp", "rx", "instinct", "arc", "grid"}
)

_QUALIFIER_RE: Final = re.compile(r"^(?:\d+(?:\.\d+)?(?:gb|g)|sxm\d*|pcie|hbm\d*e?)$", re.I)
_MEMORY_RE: Final = re.compile(r"^\d+(?:\.\d+)?(?:gb|g)$", re.I)
# "4090D", "3060Ti" are written both ways; split the variant off the number.
_STUCK_RE: Final = re.compile(r"^(\d{3,4})(ti|d|super)$", re.I)
# "RTX4090", "GTX1080Ti" are typed without the space: split the family off the number.
_FAMILY_STUCK_RE: Final = re.compile(r"^(rtx|gtx|gt|rx)(\d{3,4}[a-z]*)$", re.I)
_SPELLING: Final = {"ti": "Ti", "super": "SUPER", "pcie": "PCIe", "laptop": "Laptop", "d": "D"}


def gpu_count(gpu: str) -> int:
    """Number of GPUs a ``specs.gpu`` text names (``"8x ..."`` -> 8; no prefix: 1; empty: 0)."""
    match = _COUNT_RE.match(gpu)
    if match:
        return int(match.group(1))
    return 1 if gpu.strip() else 0


def _split(word: str) -> list[str]:
    """Dashes join qualifiers (``A100-SXM4-80GB``) or a part number (``P102-100``)."""
    if "-" not in word:
        return [word]
    parts = [p for p in word.split("-") if p]
    if len(parts) > 1 and all(_QUALIFIER_RE.match(p) for p in parts[1:]):
        return parts
    return [word]


@lru_cache(maxsize=4096)
def canonical_model(gpu: str) -> str:
    """The canonical model of a ``specs.gpu`` text (or a bare model name); ``""`` for none.

    ``"8x NVIDIA GeForce RTX 3090"`` -> ``"RTX 3090"``, ``"NVIDIA GeForce RTX 3060 Laptop
    GPU"`` -> ``"RTX 3060 Laptop"``, ``"A100-SXM4-80GB"`` -> ``"A100 SXM4 80GB"``.
    """
    match = _COUNT_RE.match(gpu)
    text = match.group(2) if match else gpu
    text = re.sub(r"\bwith\s+Max-Q\s+Design\b", "Max-Q", text, flags=re.I)
    text = re.sub(r"\bLaptop\s+GPU\b", "Laptop", text, flags=re.I)
    text = re.sub(r"\bAda\s+Generation\b", "Ada", text, flags=re.I)
    words: list[str] = []
    for raw in text.replace("_", " ").split():
        for part in _split(raw):
            family = _FAMILY_STUCK_RE.match(part)
            pieces = [family.group(1), family.group(2)] if family else [part]
            for word in pieces:
                stuck = _STUCK_RE.match(word)
                words.extend([stuck.group(1), stuck.group(2)] if stuck else [word])
    named = [w for w in words if w.lower() not in _VENDORS]
    # A name of vendor words only ("NVIDIA") is kept as it is rather than emptied.
    words = named or words
    spelled = [_spell(w) for w in words]
    memory = [w for w in spelled if _MEMORY_RE.match(w)]
    rest = [w for w in spelled if not _MEMORY_RE.match(w)]
    return " ".join(rest + memory)


def _spell(word: str) -> str:
    lower = word.lower()
    if lower in _SPELLING:
        return _SPELLING[lower]
    if _MEMORY_RE.match(word):
        return re.sub(r"(?i)g(?:b)?$", "GB", word)
    return word.upper() if lower in FAMILY_WORDS - {"quadro", "tesla", "instinct", "arc"} else word


def _key(word: str) -> str:
    return word.lower().replace("-", "")


@lru_cache(maxsize=4096)
def model_words(name: str) -> tuple[frozenset[str], tuple[str, ...], frozenset[str]]:
    """(family words, model words, qualifiers) of a model name or query, as compare keys."""
    words = [_key(w) for w in canonical_model(name).split()]
    family: list[str] = []
    while words and words[0] in FAMILY_WORDS and len(words) > 1:
        family.append(words.pop(0))
    qualifiers = frozenset(w for w in words if _QUALIFIER_RE.match(w))
    core = tuple(w for w in words if not _QUALIFIER_RE.match(w))
    return frozenset(family), core, qualifiers


@lru_cache(maxsize=16384)
def matches_model(query: str, canonical: str) -> bool:
    """True when the model ``query`` (``4090``, ``RTX 4090``, ``a100 80gb``) names ``canonical``.

    Model words must be equal; the query's family words and qualifiers must be present in
    ``canonical`` (which may have more). An empty query matches nothing.
    """
    q_family, q_core, q_quals = model_words(query)
    c_family, c_core, c_quals = model_words(canonical)
    if not q_core and not q_quals:
        return False
    # "TITAN RTX": "RTX" there is a model word, so a query "RTX" (an empty core) never
    # matches a whole family.
    if not q_core:
        return False
    return q_core == c_core and q_family <= c_family and q_quals <= c_quals
