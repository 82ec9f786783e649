"""Wire models: tolerant decoding of real and newer shapes, and the derived helpers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from clore._wire import (
    MarketplaceResponse,
    MyOrdersResponse,
    Order,
    RenterFees,
    Server,
    ServerConfig,
    Specs,
    SpotMarketplaceResponse,
    WalletsResponse,
    decode,
    normalize_currency,
    parse_gpu,
)


def _server(**fields: object) -> Server:
    base: dict[str, object] = {"id": 1, "specs": {"gpu": "8x NVIDIA GeForce RTX 3090"}}
    base.update(fields)
    return decode(json.dumps(base).encode(), Server)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- snapshot


def test_real_snapshot_decodes_every_server(snapshot_bytes: bytes) -> None:
    """The captured 3,500-server marketplace response decodes without losing a record."""
    response = decode(snapshot_bytes, MarketplaceResponse)
    assert (len(response.servers), response.code) == (3500, 0)


def test_snapshot_helpers_agree_with_raw_fields(snapshot_bytes: bytes) -> None:
    """Derived GPU counts and per-day prices match the raw JSON of the snapshot."""
    raw = json.loads(snapshot_bytes)["servers"]
    typed = decode(snapshot_bytes, MarketplaceResponse).servers
    for record, server in zip(raw[:200], typed[:200], strict=True):
        count = int(record["specs"]["gpu"].split("x", 1)[0])
        assert server.gpu_count == count
        expected = record["price"]["on_demand"].get("bitcoin")
        assert server.price_per_day("bitcoin") == (None if expected is None else float(expected))
        assert server.max_rental == timedelta(hours=record["mrl"])


# --------------------------------------------------------------------------- GPU


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8x NVIDIA GeForce RTX 3090", (8, "NVIDIA GeForce RTX 3090")),
        ("1x NVIDIA GeForce RTX 4090", (1, "NVIDIA GeForce RTX 4090")),
        (" 2 X  NVIDIA A100 ", (2, "NVIDIA A100")),
        ("NVIDIA GeForce GTX 1080 Ti", (1, "NVIDIA GeForce GTX 1080 Ti")),
        ("", (0, "")),
    ],
)
def test_gpu_count_and_model_come_from_specs_gpu(text: str, expected: tuple[int, str]) -> None:
    """`specs.gpu` splits into a GPU count and a model; no prefix means one GPU."""
    assert parse_gpu(text) == expected
    assert (Specs(gpu=text).gpu_count, Specs(gpu=text).gpu_model) == expected


def test_nested_gpu_array_with_stray_spaces_flattens() -> None:
    """`gpu_array` sent as nested lists with stray spaces gives clean per-GPU names."""
    server = _server(gpu_array=[[" NVIDIA RTX 4090 ", "NVIDIA RTX 4090"], ["  "]])
    assert server.gpu_names == ["NVIDIA RTX 4090", "NVIDIA RTX 4090"]


def test_gpu_names_fall_back_to_the_model_repeated() -> None:
    """Without `gpu_array` every GPU carries the parsed model name."""
    assert _server().gpu_names == ["NVIDIA GeForce RTX 3090"] * 8


@pytest.mark.parametrize("digits", ["²", "9" * 5000, "-3", " "])
def test_odd_digits_from_the_api_never_raise(digits: str) -> None:
    """Thread counts, port maps and GPU counts with odd digit strings read as unknown."""
    specs = Specs(cpus=f"8/{digits}", gpu=f"{digits}x RTX 4090")
    assert specs.cpu_threads is None and specs.gpu_count == 1
    order = Order(id=1, pub_cluster=["n1"], tcp_ports=[f"22:{digits}", f"{digits}:5"])
    assert order.port_map == {} and order.ssh_endpoint is None


def test_disk_model_undoes_the_x20_space_escape() -> None:
    """`disk` strings with x20 escapes read as a model and a size in GB."""
    specs = Specs(disk="SPCCx20Solidx20Statex 96.8613GB")
    assert (specs.disk_model, specs.disk_size_gb) == ("SPCC Solid State", 96.8613)


# --------------------------------------------------------------------------- prices


def test_prices_are_per_day_with_hour_and_gpu_derivations() -> None:
    """Prices are per day; per hour divides by 24 and per GPU by the GPU count."""
    server = _server(price={"on_demand": {"bitcoin": 0.00048}, "spot": {"bitcoin": 0.00024}})
    assert server.price_per_day("bitcoin") == 0.00048
    assert server.price_per_hour("bitcoin") == pytest.approx(0.00002)
    assert server.price_per_gpu_day("bitcoin") == pytest.approx(0.00006)
    assert server.price_per_day("bitcoin", spot=True) == 0.00024
    assert server.price_per_day("CLORE-Blockchain") is None


def test_usd_price_converts_with_rates() -> None:
    """A currency's per-day price converts to USD with the given rates."""
    server = _server(price={"on_demand": {"bitcoin": 0.0001, "CLORE-Blockchain": 1000}})
    rates = {"bitcoin": 60000.0, "CLORE-Blockchain": 0.003}
    assert server.usd_per_day(rates, currency="bitcoin") == pytest.approx(6.0)
    assert server.usd_per_day(rates) == pytest.approx(3.0)  # the cheapest currency
    assert server.usd_per_day(None, currency="bitcoin") is None


def test_usd_blockchain_prices_are_already_usd() -> None:
    """Newer records priced in USD-Blockchain need no rate."""
    server = _server(price={"on_demand": {"USD-Blockchain": 4.8}, "spot": {"USD-Blockchain": 2}})
    assert server.usd_per_day(currency="USD-Blockchain") == 4.8
    assert server.usd_per_day(spot=True) == 2.0


def test_price_usd_block_is_preferred_when_present() -> None:
    """A record's own `price.usd` figures are used without rates."""
    server = _server(
        price={
            "on_demand": {"bitcoin": 0.0001},
            "usd": {"on_demand_btc": 6.1, "on_demand_clore": 5.9, "spot": 2.2},
            "original_usd": {"anything": 1},
        }
    )
    assert server.usd_per_day() == 6.1
    assert server.usd_per_day(spot=True) == 2.2


# --------------------------------------------------------------------------- tolerant reading


def test_ids_and_numbers_sent_as_strings_decode() -> None:
    """Ids, prices and flags that arrive as strings decode to numbers and bools."""
    body = b'{"orders":[{"id":"45","si":"7","price":"0.5","ct":"1700000000","spot":"true"}]}'
    order = decode(body, MyOrdersResponse).orders[0]
    assert (order.id, order.si, order.price, order.ct, order.spot) == (45, 7, 0.5, 1700000000, True)
    assert _server(id="123", mrl="72").id == 123


@pytest.mark.parametrize(("value", "expected"), [(True, True), ({"min": 1}, True), (False, False)])
def test_gigaspot_may_be_a_bool_or_an_object(value: object, expected: bool) -> None:
    """`gigaspot` decodes whether the API sends a bool or an object."""
    assert _server(gigaspot=value).is_gigaspot is expected


def test_missing_and_unknown_fields_are_tolerated() -> None:
    """A minimal record with extra unknown fields decodes with defaults."""
    server = _server(brand_new_field={"x": 1})
    assert (server.rented, server.reliability, server.allowed_coins) == (False, 0, [])
    assert server.accepts("bitcoin")


def test_wallet_balance_may_be_null() -> None:
    """Legacy wallets with `balance: null` decode with balance None."""
    body = b'{"wallets":[{"name":"bitcoin","balance":null},{"name":"x","balance":"0.5"}],"code":0}'
    wallets = decode(body, WalletsResponse).wallets
    assert [w.balance for w in wallets] == [None, 0.5]


def test_unset_fields_stay_out_when_encoding() -> None:
    """Fields the API sends only sometimes are left out again when encoding."""
    encoded = json.loads(msgspec.json.encode(_server()))
    assert "gigaspot" not in encoded and "oc" not in encoded


# --------------------------------------------------------------------------- orders


def _order(**fields: object) -> Order:
    base: dict[str, object] = {"id": 9, "ct": 1_700_000_000, "mrl": 3600}
    base.update(fields)
    return msgspec.convert(base, Order, strict=False)


def test_order_mrl_is_seconds_and_time_left_counts_down() -> None:
    """An order's `mrl` is seconds; time left is ct + mrl - now, never negative."""
    order = _order()
    assert order.max_rental == timedelta(hours=1)
    assert order.time_left(now=1_700_000_000 + 600) == timedelta(seconds=3000)
    assert order.time_left(now=1_700_000_000 + 7200) == timedelta(0)
    assert _order(expired=True).time_left(now=0) == timedelta(0)
    assert order.created_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert order.expires_at - order.created_at == timedelta(hours=1)


def test_ends_at_tells_how_early_an_ended_order_stopped() -> None:
    """`ends_at` is ct + mrl whether or not the order ended; `time_left` of an ended one is 0."""
    cancelled = _order(expired=True)
    assert cancelled.ends_at == 1_700_000_000 + 3600
    assert cancelled.time_left(now=1_700_000_000 + 60) == timedelta(0)
    assert cancelled.ends_at - (1_700_000_000 + 60) == 3540
    assert cancelled.expires_at == datetime.fromtimestamp(cancelled.ends_at, tz=timezone.utc)


def test_forwarded_ports_are_rebuilt_from_tcp_ports_and_http_port() -> None:
    """forwarded_ports gives create_order's `ports` back from what my_orders returns."""
    order = _order(tcp_ports=["22:10022", "6006:10023"], http_port="8888")
    assert order.forwarded_ports == {"22": "tcp", "6006": "tcp", "8888": "http"}
    assert _order(http_port=8888).forwarded_ports == {"8888": "http"}
    assert _order().forwarded_ports == {}


def test_a_ports_field_is_not_part_of_an_order() -> None:
    """The API never sends `ports` in my_orders: an Order has no such field (one is ignored)."""
    order = _order(ports={"22": "tcp"})
    assert not hasattr(order, "ports")
    assert "ports" not in msgspec.to_builtins(order)


def test_ssh_endpoint_and_http_url_come_from_provisioned_fields() -> None:
    """A provisioned order yields its SSH host/port and the HTTPS URL of its http port."""
    order = _order(
        pub_cluster=["n1.us.clorecloud.net"],
        tcp_ports=["22:12022", "8888:12023"],
        http_pub="abc.clorecloud.net",
    )
    assert order.ssh_endpoint == ("n1.us.clorecloud.net", 12022)
    assert order.ssh_command() == "ssh root@n1.us.clorecloud.net -p 12022"
    assert order.http_url == "https://abc.clorecloud.net"
    assert order.port_map == {22: 12022, 8888: 12023}
    assert order.ready


def test_unprovisioned_order_has_no_endpoint() -> None:
    """Before provisioning there is no SSH endpoint, HTTP URL or readiness."""
    order = _order()
    assert (order.ssh_endpoint, order.ssh_command(), order.http_url, order.ready) == (
        None,
        None,
        None,
        False,
    )


def test_an_order_forwarding_only_http_is_ready_with_its_proxy() -> None:
    """Hosts plus an HTTPS proxy and no TCP ports (an http-only order) is ready.

    Regression: readiness required TCP ports, so wait_for_order never returned for an
    order created with ports={"8888": "http"}.
    """
    provisioned = _order(pub_cluster=["n1.us.clorecloud.net"], http_pub="abc.clorecloud.net")
    assert provisioned.ready and provisioned.ssh_endpoint is None
    assert not _order(http_pub="abc.clorecloud.net").ready  # no host yet
    assert not _order(pub_cluster=["n1.us.clorecloud.net"]).ready  # nothing forwarded yet


def test_pub_cluster_sent_as_a_bare_string_is_accepted() -> None:
    """`pub_cluster`/`tcp_ports` as bare strings still give an SSH endpoint."""
    order = _order(pub_cluster="n2.de.clorecloud.net", tcp_ports="22:1234")
    assert order.ssh_endpoint == ("n2.de.clorecloud.net", 1234)


# --------------------------------------------------------------------------- other endpoints


def test_spot_market_mrl_is_seconds_and_winning_offer_is_the_active_one() -> None:
    """`spot_marketplace` decodes; its server mrl is seconds; the active offer wins."""
    body = json.dumps(
        {
            "market": {
                "offers": [
                    {"offer_id": 1, "bid": 0.00001, "active": False},
                    {"offer_id": 2, "bid": 0.00002, "active": True, "my": True},
                ],
                "server": {"min_pricing": {"bitcoin": 0.000001}, "mrl": 262800},
                "currency_rates_in_usd": {"bitcoin": 68022.87},
            },
            "exists": True,
            "code": 0,
        }
    ).encode()
    market = decode(body, SpotMarketplaceResponse).market
    assert market.server.max_rental == timedelta(seconds=262800)
    assert market.winning.offer_id == 2


def test_server_config_mrl_is_hours() -> None:
    """`server_config` reports mrl in hours."""
    assert ServerConfig(mrl=72).max_rental == timedelta(days=3)


def test_renter_fees_lookup_by_order_type_and_currency() -> None:
    """Fees are looked up with the order type as the API or the CLI spells it."""
    fees = RenterFees(
        renter_fees={"on_demand": {"base": {"bitcoin": 10}}, "spot": {"base": {"bitcoin": 2.5}}},
        creation_fees={"on_demand": {"bitcoin": 0.00001}},
    )
    assert fees.fee_percent("on-demand", "bitcoin") == 10.0
    assert fees.fee_percent("spot", "bitcoin") == 2.5
    assert fees.creation_fee("on-demand", "bitcoin") == 0.00001
    assert fees.creation_fee("spot", "bitcoin") == 0.0


@pytest.mark.parametrize(
    ("name", "key"),
    [("btc", "bitcoin"), ("CLORE", "CLORE-Blockchain"), ("usd", "USD-Blockchain")],
)
def test_currency_aliases_normalise(name: str, key: str) -> None:
    """Short currency names map to the API's keys."""
    assert normalize_currency(name) == key


def test_unknown_currency_names_the_known_ones() -> None:
    """An unknown currency is a ValueError listing the three keys."""
    with pytest.raises(ValueError, match="bitcoin, CLORE-Blockchain, USD-Blockchain"):
        normalize_currency("eth")


@pytest.mark.parametrize("name", ["btc", "BTC", " bitcoin ", "Bitcoin"])
def test_server_prices_accept_the_currency_aliases_create_order_accepts(name: str) -> None:
    """Server.price_per_day("btc") reads the bitcoin price, as create_order(currency="btc")
    sends bitcoin: one alias table for both (issue 15, item 9)."""
    server = _server(
        price={"on_demand": {"bitcoin": 0.00048}, "spot": {"bitcoin": 0.00024}},
        allowed_coins=["bitcoin"],
    )
    rates = {"bitcoin": 60000.0}
    assert (
        server.price_per_day(name),
        server.price_per_day(name, spot=True),
        server.price_per_hour(name),
        server.price_per_gpu_day(name),
        server.usd_per_day(rates, currency=name),
        server.accepts(name),
    ) == (0.00048, 0.00024, pytest.approx(0.00002), pytest.approx(0.00006), 28.8, True)


def test_renter_fees_accept_the_currency_aliases() -> None:
    """RenterFees lookups take "btc" as the bitcoin key."""
    fees = decode(
        json.dumps(
            {
                "renter_fees": {"on_demand": {"base": {"bitcoin": 10}}},
                "creation_fees": {"on_demand": {"bitcoin": 0.00001}},
            }
        ).encode(),
        RenterFees,
    )
    assert (fees.fee_percent("on-demand", "btc"), fees.creation_fee("on-demand", "BTC")) == (
        10.0,
        0.00001,
    )


def test_an_unknown_currency_has_no_price() -> None:
    """A name that is no currency's spelling reads as no price, as before (not an error)."""
    server = _server(price={"on_demand": {"bitcoin": 0.00048}})
    assert (server.price_per_day("dogecoin"), server.accepts("dogecoin")) == (None, True)
