"""The filter language: every field, operator and unit, and the errors for bad words."""

from __future__ import annotations

import msgspec
import pytest

from clore._wire import MarketplaceResponse, Net, Price, Rating, Server, Specs
from clore.market import (
    FIELDS,
    FilterError,
    PriceContext,
    compile_filters,
    describe_fields,
    parse_filter,
    parse_filters,
    select,
)
from clore.sandbox import snapshot_bytes

RATES = {"bitcoin": 60_000.0, "CLORE-Blockchain": 0.01}
CTX = PriceContext("bitcoin", RATES)

# 2x RTX 4090, 0.0012 BTC/day (72 USD/day, 3 USD/h; 36 USD per GPU per day)
SERVER = Server(
    id=42,
    mrl=96,
    price=Price(on_demand={"bitcoin": 0.0012, "CLORE-Blockchain": 7000}, spot={"bitcoin": 0.001}),
    specs=Specs(
        cpu="AMD Ryzen 9 7950X",
        cpus="16/32",
        ram=128,
        disk="Samsungx20SSD 1863.0GB",
        gpu="2x NVIDIA GeForce RTX 4090",
        gpuram=24,
        net=Net(cc="DE", down=900, up=450),
    ),
    reliability=0.97,
    rating=Rating(avg=4.5, cnt=10),
    cuda_version="12.4",
)


def _match(word: str, server: Server = SERVER, ctx: PriceContext = CTX) -> bool:
    return parse_filter(word)(server, ctx)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("id=42", True),
        ("id!=42", False),
        ("gpu=4090", True),
        ("GPU=rtx 4090", True),
        ("gpu=4090 laptop", False),
        ("gpu=4090 D", False),
        ("gpu~rtx 40", True),
        ("gpu~Laptop", False),
        ("gpu!~laptop", True),
        ("gpu!~geforce", False),
        ("gpu=3090", False),
        ("gpu=3090,4090", True),
        ("gpu!=3090", True),
        ("gpus>=2", True),
        ("gpus>2", False),
        ("gpus=2", True),
        ("gpuram>=24", True),
        ("gpuram>=24gb", True),
        ("vram<24", False),
        ("price<3usd", False),
        ("price<=72usd", True),
        ("price<3.1usd/h", True),
        ("price<0.002", True),
        ("price<0.002btc", True),
        ("price>0.001btc", True),
        ("price<7001clore", True),
        ("gpu_price<=36usd", True),
        ("gpu_price<1.5usd/h", False),
        ("spot_price<0.0011btc", True),
        ("reliability>0.9", True),
        ("reliability>=98%", False),
        ("rating>=4", True),
        ("rating>4.5", False),
        ("cc=de", True),
        ("cc=US,DE", True),
        ("cc!=US,DE", False),
        ("country=de", True),
        ("cuda>=12.2", True),
        ("cuda>12.4", False),
        ("cuda=12.4.0", True),
        ("cpu=ryzen", True),
        ("cpu~RYZEN 9", True),
        ("cpu!~ryzen", False),
        ("threads>=32", True),
        ("ram>=64", True),
        ("ram>=0.2tb", False),
        ("disk>=500", True),
        ("disk>=2tb", False),
        ("down>=500", True),
        ("down>=1gbps", False),
        ("up<500mbps", True),
        ("mrl>=48h", True),
        ("mrl>=4d", True),
        ("mrl>=1w", False),
        ("mrl>=96", True),
        ("spot", True),
        ("spot=no", False),
        ("spot!=yes", False),
    ],
)
def test_each_field_operator_and_unit(word: str, expected: bool) -> None:
    """Every field reads its value, unit suffixes scale it, and the operator compares."""
    assert _match(word) is expected


def test_every_field_is_covered_by_the_table() -> None:
    """The table above exercises every field of the language."""
    words = [w for w, _ in test_each_field_operator_and_unit.pytestmark[0].args[1]]  # type: ignore[attr-defined]
    used = {parse_filter(w).field.name for w in words}
    assert set(FIELDS) == used


@pytest.mark.parametrize(
    ("word", "reason"),
    [
        ("colour=red", "unknown field 'colour'"),
        ("gpus>>2", "not a number"),
        ("gpus>=two", "not a number"),
        ("gpu>4090", "compares with = != ~ !~ only"),
        ("gpus~2", "~ (a substring) is for the text fields gpu and cpu only"),
        ("cc!~US", "!~ (a substring) is for the text fields gpu and cpu only"),
        ("gpu=RTX", "'RTX' names no GPU model"),
        ("gpu=80gb", "'80gb' names no GPU model"),
        ("cc<US", "compares with = or != only"),
        ("price<3eur", "unknown currency"),
        ("price=3usd,4usd", "one value"),
        ("ram>=64xb", "unknown unit"),
        ("cuda>=twelve", "not a version"),
        ("mrl>=2fortnights", "unknown unit"),
        ("spot=maybe", "yes/no flag"),
        ("gpus", "expected gpus OP value"),
        ("gpus>=", "missing value"),
        ("4090", "expected field OP value"),
    ],
)
def test_malformed_words_name_the_word_and_the_known_fields(word: str, reason: str) -> None:
    """A bad word raises FilterError quoting the word, the reason and the field list."""
    with pytest.raises(FilterError) as info:
        parse_filter(word)
    message = str(info.value)
    assert repr(word) in message
    assert reason in message
    assert "Known fields: id, gpu, gpus" in message


def test_unknown_values_never_match() -> None:
    """A server without a CUDA version or a convertible price matches no such filter."""
    bare = Server(id=1, price=Price(on_demand={"bitcoin": 0.001}))
    no_rates = PriceContext("bitcoin", None)
    assert _match("cuda>=11", bare) is False
    assert _match("cuda!=12.2", bare) is False
    assert _match("price<3usd", bare, no_rates) is False
    assert _match("price>3usd", bare, no_rates) is False
    assert _match("price<1btc", bare, no_rates) is True


def test_bare_prices_are_in_the_payment_currency() -> None:
    """Without a suffix, a price is read in the context's currency."""
    assert _match("price<1000", ctx=PriceContext("CLORE-Blockchain", RATES)) is False
    assert _match("price<1000", ctx=CTX) is True  # 0.0012 BTC < 1000 BTC


def test_compiled_filters_require_every_word() -> None:
    """compile_filters is the conjunction of the words."""
    predicate = compile_filters(parse_filters(["gpu=4090", "cc=DE"]), CTX)
    assert predicate(SERVER) is True
    assert compile_filters(parse_filters(["gpu=4090", "cc=US"]), CTX)(SERVER) is False


def test_describe_fields_lists_every_field() -> None:
    """The --help table names every field."""
    text = describe_fields()
    assert all(name in text for name in FIELDS)


def test_select_on_the_real_snapshot_keeps_available_matching_servers() -> None:
    """On the 2024 snapshot, gpu=4090 gpus=1 finds only available single RTX 4090 servers
    (no laptop part)."""
    raw = snapshot_bytes()  # the copy bundled with the sandbox: no path outside the repo
    servers = msgspec.json.decode(raw, type=MarketplaceResponse, strict=False).servers
    expected = sum(
        1
        for record in msgspec.json.decode(raw)["servers"]
        if record["specs"]["gpu"] == "1x NVIDIA GeForce RTX 4090"
    )
    chosen = select(servers, parse_filters(["gpu=4090", "gpus=1"]), CTX)
    assert chosen
    assert all(
        s.gpu_count == 1 and s.gpu_model == "NVIDIA GeForce RTX 4090" and not s.rented
        for s in chosen
    )
    with_rented = select(servers, parse_filters(["gpu=4090", "gpus=1"]), CTX, include_rented=True)
    assert len(with_rented) == expected
    assert len(select(servers, [], CTX, limit=7)) == 7


# ------------------------------------------------------------------ edges (mutation testing)


@pytest.mark.parametrize(
    ("word", "reason"),
    [
        ("gpuram>8xb", "unknown unit 'xb' (units: g, gb, t, tb)"),
        ("gpus>2x", "unknown unit 'x' (units: none)"),
        ("ram>1e400", "'1e400' is too large"),
        ("gpus>=", "missing value"),
        ("price=3usd,4usd", "a price takes one value, not a list"),
        ("gpus 2", "expected field OP value with OP one of = != ~ !~ > >= < <="),
        ("gpus>2,3", "'2,3' is not a number"),
        ("nosuch", "unknown field 'nosuch'"),
    ],
)
def test_a_bad_word_carries_the_word_and_the_exact_reason(word: str, reason: str) -> None:
    """FilterError keeps the word and the reason, and says both in its message."""
    with pytest.raises(FilterError) as info:
        parse_filter(word)
    error = info.value
    assert (error.word, error.reason) == (word, reason)
    assert str(error).startswith(f"bad filter {word!r}: {reason}. Known fields: id, gpu")


@pytest.mark.parametrize(
    ("word", "op", "values"),
    [
        ("spot", "=", (True,)),
        ("SPOT", "=", (True,)),
        ("spot=no", "=", (False,)),
        ("spot!=yes", "=", (False,)),
        ("gpus==2", "=", (2.0,)),
        ("cuda=12.0.0", "=", ((12,),)),
        ("cuda>=0.0", ">=", ((0,),)),
        ("cuda<12.10", "<", ((12, 10),)),
    ],
)
def test_a_parsed_word_keeps_the_word_a_plain_operator_and_its_values(
    word: str, op: str, values: tuple[object, ...]
) -> None:
    """Flags and '==' become '=', versions drop trailing zeros, and the word is kept."""
    parsed = parse_filter(word)
    assert (parsed.word, parsed.op, parsed.values) == (word, op, values)


def test_a_version_with_trailing_zeros_matches_the_short_form() -> None:
    """cuda=12.4.0 matches a server on CUDA 12.4; cuda=12.0.0 one on CUDA 12."""
    twelve = msgspec.structs.replace(SERVER, cuda_version="12")
    assert (_match("cuda=12.4.0"), _match("cuda=12.0.0", twelve)) == (True, True)


def test_the_price_fields_read_prices_for_sorting_in_the_payment_currency() -> None:
    """FIELDS' price getters (used to sort) give per-day prices in the context's currency."""
    in_clore = PriceContext("CLORE-Blockchain", RATES)
    got = [FIELDS[name].getter(SERVER, in_clore) for name in ("price", "gpu_price", "spot_price")]
    # spot has no CLORE price: 0.001 BTC converted at 60,000 USD/BTC and 0.01 USD/CLORE
    assert got == [7000.0, 3500.0, pytest.approx(6000.0)]


def test_a_per_gpu_price_of_a_server_without_gpus_is_unknown() -> None:
    """gpu_price of a server listing no GPU is unknown: it never matches and never divides."""
    no_gpu = Server(id=1, price=Price(on_demand={"bitcoin": 0.001}))
    assert (_match("gpu_price<1", no_gpu), FIELDS["gpu_price"].getter(no_gpu, CTX)) == (
        False,
        None,
    )


def test_compiled_price_filters_use_the_context() -> None:
    """compile_filters hands its PriceContext to each word: a bare price is in its currency."""
    words = parse_filters(["price<1000"])
    in_clore = compile_filters(words, PriceContext("CLORE-Blockchain", RATES))
    assert (compile_filters(words, CTX)(SERVER), in_clore(SERVER)) == (True, False)


def test_describe_fields_aligns_the_descriptions() -> None:
    """One line per field: its name padded to the longest name, two spaces, its help."""
    width = max(len(name) for name in FIELDS)
    expected = [f"{name.ljust(width)}  {f.help}" for name, f in FIELDS.items()]
    assert describe_fields().split("\n") == expected
