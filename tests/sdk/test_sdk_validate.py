"""Bad arguments raise ParameterError (a ValueError) naming the parameter, and send nothing."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from _stub.wire import Wire
from clore import Clore, Pacing, ParameterError
from clore._validate import (
    validate_create_order,
    validate_ports,
    validate_server_settings,
)

GOOD: dict[str, Any] = {"server_id": 1, "image": "cloreai/ubuntu22.04-cuda12"}

BAD_ORDERS = [
    ({"order_type": "reserved"}, "order_type", "must be 'on-demand' or 'spot'"),
    ({"order_type": "spot"}, "spotprice", "required for spot orders"),
    ({"order_type": "spot", "spotprice": 0}, "spotprice", "> 0"),
    ({"order_type": "spot", "spotprice": -1.5}, "spotprice", "> 0"),
    ({"order_type": "spot", "spotprice": float("nan")}, "spotprice", "finite"),
    ({"spotprice": 0.0001}, "spotprice", "only valid for spot orders"),
    ({"ssh_password": "pass word"}, "ssh_password", "only letters and digits"),
    ({"ssh_password": "pässword"}, "ssh_password", "only letters and digits"),
    ({"ssh_password": "a" * 33}, "ssh_password", "at most 32 characters"),
    ({"ssh_key": "ssh-rsa AAAA" + "B" * 3062}, "ssh_key", "at most 3072 characters"),
    ({"ssh_key": "k" * 40}, "ssh_key", "not an OpenSSH public key"),
    ({"ssh_key": "ssh-ed25519"}, "ssh_key", "not an OpenSSH public key"),
    ({"ssh_key": "ssh-ed25519 not*base64 me"}, "ssh_key", "not an OpenSSH public key"),
    ({"ssh_key": "ssh-ed25519 AAAAC3Nz me\nssh-rsa AAAAB3 you"}, "ssh_key", "one line"),
    ({"ssh_key": "ssh-ed25519 AAAAC3Nz me\x00"}, "ssh_key", "not an OpenSSH public key"),
    ({"jupyter_token": "t" * 33}, "jupyter_token", "at most 32 characters"),
    ({"ports": {"80": "http", "8888": "http"}}, "ports", "at most one http port"),
    ({"ports": {"0": "tcp"}}, "ports", "out of range"),
    ({"ports": {70000: "tcp"}}, "ports", "out of range"),
    ({"ports": {"ssh": "tcp"}}, "ports", "invalid port"),
    ({"ports": {22: "sctp"}}, "ports", "protocol must be one of tcp, http"),
    ({"ports": ["22"]}, "ports", "expected 'port:protocol'"),
    ({"ports": "22:tcp"}, "ports", "expected a mapping"),
    ({"currency": "eth"}, "currency", "unknown currency"),
    ({"server_id": -1}, "server_id", ">= 0"),
    ({"server_id": True}, "server_id", "integer id"),
    ({"server_id": 1.5}, "server_id", "integer id"),
    ({"server_id": "²"}, "server_id", "integer id"),
    ({"server_id": "9" * 5000}, "server_id", "integer id"),
    ({"server_id": 2**64}, "server_id", "at most"),
    ({"ports": {"²": "tcp"}}, "ports", "invalid port"),
    ({"image": " "}, "image", "non-empty"),
    ({"env": {"A": 1}}, "env", "must be a string"),
    ({"env": ["A=1"]}, "env", "mapping"),
    ({"required_price": 0}, "required_price", "> 0"),
    ({"autossh_entrypoint": "yes"}, "autossh_entrypoint", "True or False"),
    ({"command": 42}, "command", "string"),
]


@pytest.mark.parametrize(("extra", "param", "message"), BAD_ORDERS)
def test_bad_create_order_arguments_are_refused(
    extra: dict[str, Any], param: str, message: str
) -> None:
    """Each invalid create_order argument raises ParameterError naming it, with the reason."""
    with pytest.raises(ParameterError) as info:
        validate_create_order(**{**GOOD, **extra})
    assert info.value.param == param
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("extra", "param", "message"), BAD_ORDERS)
def test_bad_create_order_sends_nothing(
    extra: dict[str, Any], param: str, message: str, wire: Wire, client: Clore
) -> None:
    """The client raises before any request, the my_orders snapshot included."""
    with pytest.raises(ParameterError):
        client.create_order(**{**GOOD, **extra})
    assert wire.seen == []


def test_good_create_order_is_normalised() -> None:
    """Aliases and port notations are normalised into the wire body."""
    request = validate_create_order(
        **GOOD,
        order_type="SPOT",
        currency="clore",
        spotprice=12,
        ports=["22:tcp", "8888/HTTP"],
        ssh_password="abc123",
        env={"A": "1"},
    )
    assert (request.type, request.currency, request.spotprice) == ("spot", "CLORE-Blockchain", 12.0)
    assert request.ports == {"22": "tcp", "8888": "http"}
    assert request.renting_server == 1


def test_ports_accept_int_and_str_keys() -> None:
    """Port mappings with int or str keys normalise to str keys and lower-case protocols."""
    assert validate_ports({22: "TCP", "8888": "http", 2222: "tcp"}) == {
        "22": "tcp",
        "8888": "http",
        "2222": "tcp",
    }
    assert validate_ports(None) is None


def test_limits_themselves_are_allowed() -> None:
    """Values exactly at the documented limits are accepted."""
    request = validate_create_order(
        **GOOD,
        ssh_password="a" * 32,
        ssh_key="ssh-rsa AAAA" + "B" * 3060,
        jupyter_token="t" * 32,
    )
    assert (len(request.ssh_password or ""), len(request.ssh_key or "")) == (32, 3072)


@pytest.mark.parametrize(
    ("call", "param", "message"),
    [
        (lambda c: c.cancel_order(1, issue="x" * 2049), "issue", "at most 2048 characters"),
        (lambda c: c.cancel_order("abc"), "order_id", "integer id"),
        (lambda c: c.set_spot_price(1, 0), "price", "> 0"),
        (lambda c: c.set_spot_price(1, "cheap"), "price", "expected a number"),
        (lambda c: c.spot_marketplace(-3), "server_id", ">= 0"),
        (lambda c: c.server_config(""), "server_name", "non-empty"),
        (lambda c: c.get_order(None), "order_id", "integer id"),
        (lambda c: c.wait_for_order(True), "order_id", "integer id"),
        (lambda c: c.wait_for_order(1, timeout=float("nan")), "timeout", "seconds"),
        (lambda c: c.wait_for_order(1, timeout=-1), "timeout", "seconds"),
        (lambda c: c.wait_for_order(1, poll_interval=float("inf")), "poll_interval", "seconds"),
        (lambda c: c.cancel_order(10**30), "order_id", "at most"),
        (lambda c: c.set_server_settings("rig"), "name", "nothing to change"),
        (lambda c: c.set_server_settings("rig", mrl=0), "mrl", "hours > 0"),
        (lambda c: c.set_server_settings("rig", availability="on"), "availability", "True"),
    ],
)
def test_other_writes_and_reads_validate_before_sending(
    call: Any, param: str, message: str, wire: Wire, client: Clore
) -> None:
    """Invalid ids, prices, names and settings raise ParameterError and send nothing."""
    with pytest.raises(ParameterError) as info:
        call(client)
    assert info.value.param == param and message in str(info.value)
    assert wire.seen == []


def test_server_settings_per_currency_form_expands_to_flat_keys() -> None:
    """per_currency settings become the API's flat per-currency keys."""
    body = validate_server_settings(
        "rig-1",
        mrl=72,
        per_currency={
            "btc": {"on_demand": 0.0001, "spot": 0.00005, "enabled": True},
            "clore": {"enabled": False},
        },
    )
    assert msgspec.to_builtins(body) == {
        "name": "rig-1",
        "mrl": 72,
        "bitcoin_on_demand": 0.0001,
        "bitcoin_spot": 0.00005,
        "enabled-bitcoin": True,
        "enabled-CLORE-Blockchain": False,
    }


def test_server_settings_legacy_form() -> None:
    """Legacy settings keep the API's legacy keys."""
    body = validate_server_settings("rig-1", availability=True, on_demand=0.0001, spot=0.00005)
    assert msgspec.to_builtins(body) == {
        "name": "rig-1",
        "availability": True,
        "on_demand": 0.0001,
        "spot": 0.00005,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_demand": 1, "per_currency": {"btc": {"spot": 1}}}, "either on_demand/spot"),
        ({"per_currency": {"btc": {"rent": 1}}}, "unknown setting 'rent'"),
        ({"per_currency": {"doge": {"spot": 1}}}, "unknown currency"),
        ({"per_currency": {"btc": {"enabled": 1}}}, "'enabled' must be True or False"),
        ({"per_currency": {}}, "non-empty mapping"),
    ],
)
def test_server_settings_refuse_mixed_or_unknown_forms(
    kwargs: dict[str, Any], message: str
) -> None:
    """Mixing the two forms, unknown settings and unknown currencies are refused."""
    with pytest.raises(ParameterError, match=message):
        validate_server_settings("rig-1", **kwargs)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), True])
def test_client_timeout_must_be_a_finite_positive_number(timeout: object) -> None:
    """A zero, negative, NaN, infinite or boolean timeout is refused when the client is made."""
    with pytest.raises(ParameterError) as info:
        Clore("key-0123456789abcdef", timeout=timeout)  # type: ignore[arg-type]
    assert info.value.param == "timeout"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.5, True])
def test_pacing_intervals_must_be_finite_and_non_negative(value: object) -> None:
    """Pacing refuses NaN, infinite, negative and boolean intervals (they would hang or spin)."""
    with pytest.raises(ValueError, match="min_interval"):
        Pacing(min_interval=value)  # type: ignore[arg-type]


# A private key in each format people have on disk; the body is a distinctive marker.
_SECRET_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQPRIVATEMATERIAL"
PRIVATE_KEYS = [
    f"-----BEGIN OPENSSH PRIVATE KEY-----\n{_SECRET_BODY}\n-----END OPENSSH PRIVATE KEY-----\n",
    f"-----BEGIN RSA PRIVATE KEY-----\n{_SECRET_BODY}\n-----END RSA PRIVATE KEY-----",
    f"-----BEGIN EC PRIVATE KEY-----\n{_SECRET_BODY}\n-----END EC PRIVATE KEY-----",
    f"-----BEGIN PRIVATE KEY-----\n{_SECRET_BODY}\n-----END PRIVATE KEY-----",
    f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{_SECRET_BODY}\n-----END ENCRYPTED PRIVATE KEY-----",
    f"  \n-----BEGIN OPENSSH PRIVATE KEY-----\n{_SECRET_BODY}",
    f"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPrivate-Lines: 1\n{_SECRET_BODY}",
    f"openssh-key-v1\x00{_SECRET_BODY}",
    f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me\n-----BEGIN OPENSSH PRIVATE KEY-----\n{_SECRET_BODY}",
]


@pytest.mark.parametrize("key", PRIVATE_KEYS)
def test_a_private_key_is_refused_without_echoing_it(key: str, wire: Wire, client: Clore) -> None:
    """create_order(ssh_key=<a private key>) raises ParameterError naming no key material,
    and sends nothing."""
    with pytest.raises(ParameterError) as info:
        client.create_order(**GOOD, ssh_key=key)
    assert info.value.param == "ssh_key"
    assert "private key" in str(info.value)
    for text in (str(info.value), repr(info.value)):
        assert _SECRET_BODY not in text and "PRIVATE KEY-----" not in text
    assert wire.seen == []


@pytest.mark.parametrize(
    "key",
    [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@example.com",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=",
        "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t yubikey",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 a comment with spaces",
    ],
)
def test_openssh_public_keys_are_accepted_and_trimmed(key: str) -> None:
    """One-line OpenSSH public keys of every documented type pass, surrounding blanks trimmed."""
    request = validate_create_order(**GOOD, ssh_key=f"  {key}\n")
    assert key == request.ssh_key
