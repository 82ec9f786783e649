"""Argument checks for every write: bad input raises ``ParameterError`` and nothing is sent.

Pure functions. Each returns the normalised value (or the wire request body) so that
the caller never sends what it did not check. The limits are the API reference's, as
``clore._facts`` holds them (the request Structs state the same ones as constraints):
ssh_password alphanumeric and at most 32 characters, ssh_key at most 3072, jupyter_token
at most 32, at most one ``http`` port, ``issue`` at most 2048 characters, spot orders need
a positive ``spotprice``. Beyond the reference: ``ssh_key`` must be one OpenSSH public key
line (a private key is refused, unechoed), a base URL must be http(s) with a host (the API
key's check is ``clore.config``'s); one whose path does not end in ``/v1`` is allowed, and
``base_url_hint`` says in one line what is probably wrong with it.

``preview_create_order`` is public (``clore.preview_create_order``): exactly the body
``create_order`` would send, which ``Clore.create_order`` builds with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from clore._errors import ConfigError, ParameterError
from clore._facts import (
    MAX_ID,
    MAX_ISSUE,
    MAX_JUPYTER_TOKEN,
    MAX_SSH_KEY,
    MAX_SSH_PASSWORD,
    ORDER_TYPE_ALIASES,
    PROTOCOLS,
    Currency,
    CurrencyName,
    OrderType,
    OrderTypeName,
    Protocol,
    normalize_currency,
)
from clore._sshkey import public_key_problem
from clore._wire import (
    PER_CURRENCY_PREFIX,
    CancelOrderRequest,
    CreateOrderRequest,
    SetServerSettingsPerCurrencyRequest,
    SetServerSettingsRequest,
    SetSpotPriceRequest,
    ascii_int,
)

__all__ = [
    "Ports",
    "base_url_hint",
    "finite_number",
    "preview_create_order",
    "validate_base_url",
    "validate_cancel_order",
    "validate_create_order",
    "validate_currency",
    "validate_id",
    "validate_ports",
    "validate_price",
    "validate_seconds",
    "validate_server_name",
    "validate_server_settings",
    "validate_set_spot_price",
    "validate_ssh_key",
]

#: What ``ports`` may be: {port: protocol} (int or str keys) or ``"22:tcp"`` strings.
Ports = Mapping[str, str] | Mapping[int, str] | Mapping[str | int, str] | Iterable[str]

# People write the order type the way the marketplace UI or the JSON field shows it.
_ORDER_TYPE_ALIASES: Final[Mapping[str, OrderType]] = ORDER_TYPE_ALIASES


def validate_id(value: object, param: str) -> int:
    """A non-negative integer id (an order or server id); digit strings are accepted."""
    if isinstance(value, bool):
        raise ParameterError(param, f"expected an integer id, got {value!r}")
    if isinstance(value, str):
        parsed = ascii_int(value)
        if parsed is None:
            raise ParameterError(param, f"expected an integer id, got {value[:40]!r}")
        value = parsed
    if not isinstance(value, int):
        raise ParameterError(param, f"expected an integer id, got {type(value).__name__}")
    if value < 0:
        raise ParameterError(param, f"must be >= 0, got {value}")
    if value > MAX_ID:
        raise ParameterError(param, f"must be at most {MAX_ID} (a 64-bit id)")
    return value


def finite_number(value: object) -> float | None:
    """``value`` as a float when it is a finite int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def validate_seconds(value: object, param: str, *, forever: bool = False) -> float:
    """A number of seconds >= 0 (``inf``, waiting for ever, only when ``forever``)."""
    number = float("inf") if forever and value == float("inf") else finite_number(value)
    if number is None or number < 0:
        raise ParameterError(param, f"expected a number of seconds >= 0, got {value!r}")
    return number


def validate_price(value: object, param: str) -> float:
    """A finite price per day greater than zero."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(param, f"expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ParameterError(param, f"must be a finite number > 0, got {value!r}")
    return number


def validate_currency(value: object, param: str = "currency") -> Currency:
    """The API's currency key for ``value`` (aliases ``btc``, ``clore``, ``usd`` accepted)."""
    if not isinstance(value, str):
        raise ParameterError(param, f"expected a currency name, got {type(value).__name__}")
    try:
        return normalize_currency(value)
    except ValueError as exc:
        raise ParameterError(param, str(exc)) from None


def _optional_text(value: object, param: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParameterError(param, f"expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise ParameterError(param, f"at most {limit} characters allowed, got {len(value)}")
    return value


def _port_number(value: object) -> int:
    if isinstance(value, bool):
        raise ParameterError("ports", f"invalid port {value!r}")
    number = ascii_int(value) if isinstance(value, str) else value
    if not isinstance(number, int):
        raise ParameterError("ports", f"invalid port {str(value)[:40]!r}: expected a number")
    value = number
    if not 1 <= value <= 65535:
        raise ParameterError("ports", f"port {value} out of range 1..65535")
    return value


def _protocol(port: int, value: object) -> Protocol:
    # The reference documents only tcp and http forwarding; a strict writer sends nothing else.
    name = value.strip().lower() if isinstance(value, str) else None
    for protocol in PROTOCOLS:
        if name == protocol:
            return protocol
    raise ParameterError(
        "ports", f"port {port}: protocol must be one of {', '.join(PROTOCOLS)}, got {value!r}"
    )


def validate_ports(ports: object) -> dict[str, str] | None:
    """Normalise ``ports`` to ``{"22": "tcp", "8888": "http"}`` (see ``_ports``)."""
    checked = _ports(ports)
    return None if checked is None else dict(checked)


def _ports(ports: object) -> dict[str, Protocol] | None:
    """Normalise ``ports`` to ``{"22": "tcp", "8888": "http"}``.

    Accepts a mapping {port: protocol} (int or str keys) or an iterable of ``"22:tcp"``
    (also ``"22/tcp"``) strings. At most one port may be ``http``.
    """
    if ports is None:
        return None
    pairs: list[tuple[object, object]] = []
    if isinstance(ports, Mapping):
        pairs = list(ports.items())
    elif isinstance(ports, Iterable) and not isinstance(ports, str | bytes):
        for entry in ports:
            if not isinstance(entry, str):
                raise ParameterError("ports", f"expected 'port:protocol' strings, got {entry!r}")
            sep = ":" if ":" in entry else "/"
            number, _, proto = entry.partition(sep)
            if not proto:
                raise ParameterError("ports", f"expected 'port:protocol', got {entry!r}")
            pairs.append((number, proto))
    else:
        raise ParameterError("ports", "expected a mapping {port: protocol} or 'port:protocol' list")
    normalised: dict[str, Protocol] = {}
    for raw_port, raw_proto in pairs:
        port = _port_number(raw_port)
        normalised[str(port)] = _protocol(port, raw_proto)
    http = [port for port, proto in normalised.items() if proto == "http"]
    if len(http) > 1:
        raise ParameterError("ports", f"at most one http port allowed, got {', '.join(http)}")
    return normalised


def _validate_env(env: object) -> dict[str, str] | None:
    if env is None:
        return None
    if not isinstance(env, Mapping):
        raise ParameterError("env", f"expected a mapping of str to str, got {type(env).__name__}")
    out: dict[str, str] = {}
    for key, value in env.items():
        if not isinstance(key, str) or not key:
            raise ParameterError("env", f"variable names must be non-empty strings, got {key!r}")
        if not isinstance(value, str):
            raise ParameterError("env", f"value of {key} must be a string")
        out[key] = value
    return out


def validate_ssh_key(value: object) -> str | None:
    """One OpenSSH public key line, trimmed; a private key or anything else is refused
    without being quoted (it may be a secret)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParameterError("ssh_key", f"expected a string, got {type(value).__name__}")
    text = value.strip()
    why = public_key_problem(text)
    if why is not None:
        raise ParameterError("ssh_key", f"the value {why}")
    if len(text) > MAX_SSH_KEY:
        raise ParameterError(
            "ssh_key", f"at most {MAX_SSH_KEY} characters allowed, got {len(text)}"
        )
    return text


def _shown_url(url: str) -> str:
    # A URL may carry user:password@; never repeat that part.
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = "…@" + rest.split("@", 1)[1]
    shown = f"{scheme}{sep}{rest}"
    return shown if len(shown) <= 120 else shown[:119] + "…"


def validate_base_url(url: object) -> str:
    """An ``http(s)://host[:port]/path`` base URL without trailing slash; ConfigError else."""
    if not isinstance(url, str):
        raise ConfigError(f"invalid base_url: expected a string, got {type(url).__name__}")
    text = url.strip()
    shown = _shown_url(text).encode("ascii", "backslashreplace").decode()
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in text):
        raise ConfigError(f"invalid base_url {shown!r}: it holds a space or control character")
    try:
        parts = urlsplit(text)
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid base_url {shown!r}: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigError(f"invalid base_url {shown!r}: expected an http:// or https:// URL")
    if not host:
        raise ConfigError(f"invalid base_url {shown!r}: no host")
    return text.rstrip("/")


def base_url_hint(url: str) -> str | None:
    """One line for a base URL whose path does not end in ``/v1`` (every endpoint of the
    API is ``<base>/<name>`` with the base ``https://api.clore.ai/v1``, a sandbox's
    ``http://127.0.0.1:8765/v1``); None for one that does, or that is no URL at all.

    Not an error (a proxy may serve the API elsewhere): the words to add to an answer
    that says the endpoint is unknown (code 4, HTTP 404), or where a URL is stored.
    """
    text = url.strip().rstrip("/")
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None  # validate_base_url says what is wrong with it
    if parts.path.lower().endswith("/v1") or not text.isprintable():
        return None
    shown = _shown_url(text)
    return f"the base URL {shown} does not end in /v1: the API is under /v1 (try {shown}/v1)"


def _validate_ssh_password(value: object) -> str | None:
    text = _optional_text(value, "ssh_password", MAX_SSH_PASSWORD)
    # The API accepts letters and digits only; a space or symbol would be refused remotely.
    if text is not None and not (text.isascii() and text.isalnum()):
        raise ParameterError("ssh_password", "only letters and digits (A-Z, a-z, 0-9) allowed")
    return text


def validate_create_order(
    *,
    server_id: object,
    image: object,
    order_type: object = "on-demand",
    currency: object = "bitcoin",
    spotprice: object = None,
    ports: object = None,
    ssh_password: object = None,
    ssh_key: object = None,
    jupyter_token: object = None,
    env: object = None,
    command: object = None,
    required_price: object = None,
    autossh_entrypoint: object = None,
) -> CreateOrderRequest:
    """Check every ``create_order`` argument and return the request body to send (the
    untyped core of ``preview_create_order``, for arguments read from anywhere)."""
    renting_server = validate_id(server_id, "server_id")
    if not isinstance(image, str) or not image.strip():
        raise ParameterError("image", "a non-empty image name is required")
    if not isinstance(order_type, str) or order_type.lower() not in _ORDER_TYPE_ALIASES:
        raise ParameterError("order_type", f"must be 'on-demand' or 'spot', got {order_type!r}")
    kind = _ORDER_TYPE_ALIASES[order_type.lower()]
    if kind == "spot":
        if spotprice is None:
            raise ParameterError("spotprice", "required for spot orders (the bid per day)")
        bid: float | None = validate_price(spotprice, "spotprice")
    elif spotprice is not None:
        raise ParameterError("spotprice", "only valid for spot orders")
    else:
        bid = None
    if command is not None and not isinstance(command, str):
        raise ParameterError("command", f"expected a string, got {type(command).__name__}")
    if autossh_entrypoint is not None and not isinstance(autossh_entrypoint, bool):
        raise ParameterError("autossh_entrypoint", "expected True or False")
    return CreateOrderRequest(
        currency=validate_currency(currency),
        image=image.strip(),
        renting_server=renting_server,
        type=kind,
        spotprice=bid,
        ports=_ports(ports),
        env=_validate_env(env),
        ssh_password=_validate_ssh_password(ssh_password),
        ssh_key=validate_ssh_key(ssh_key),
        jupyter_token=_optional_text(jupyter_token, "jupyter_token", MAX_JUPYTER_TOKEN),
        command=command,
        required_price=(
            None if required_price is None else validate_price(required_price, "required_price")
        ),
        autossh_entrypoint=autossh_entrypoint,
    )


def preview_create_order(
    server_id: int,
    image: str,
    order_type: OrderTypeName = "on-demand",
    currency: CurrencyName = "bitcoin",
    spotprice: float | None = None,
    ports: Ports | None = None,
    ssh_password: str | None = None,
    ssh_key: str | None = None,
    jupyter_token: str | None = None,
    env: Mapping[str, str] | None = None,
    command: str | None = None,
    required_price: float | None = None,
    autossh_entrypoint: bool | None = None,
) -> CreateOrderRequest:
    """Exactly the body ``Clore.create_order`` would send for these arguments; nothing is
    sent, no client or key is needed.

    Takes ``create_order``'s arguments and checks them the same way (``ParameterError``
    names the first bad one). The body is normalised: ``currency`` the API's key
    (``btc`` -> ``bitcoin``), ``type`` ``on-demand`` or ``spot``, ``ports``
    ``{"22": "tcp"}``. ``msgspec.json.encode(body)`` is the JSON sent; unset fields stay out.
    """
    return validate_create_order(
        server_id=server_id,
        image=image,
        order_type=order_type,
        currency=currency,
        spotprice=spotprice,
        ports=ports,
        ssh_password=ssh_password,
        ssh_key=ssh_key,
        jupyter_token=jupyter_token,
        env=env,
        command=command,
        required_price=required_price,
        autossh_entrypoint=autossh_entrypoint,
    )


def validate_cancel_order(order_id: object, issue: object = None) -> CancelOrderRequest:
    """Check ``cancel_order`` arguments (``issue`` at most 2048 characters)."""
    return CancelOrderRequest(
        id=validate_id(order_id, "order_id"), issue=_optional_text(issue, "issue", MAX_ISSUE)
    )


def validate_set_spot_price(order_id: object, price: object) -> SetSpotPriceRequest:
    """Check ``set_spot_price`` arguments (a positive bid per day)."""
    return SetSpotPriceRequest(
        order_id=validate_id(order_id, "order_id"), desired_price=validate_price(price, "price")
    )


def validate_server_name(name: object, param: str = "server_name") -> str:
    """A non-empty server name."""
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(param, "a non-empty server name is required")
    return name


def _per_currency_fields(per_currency: object) -> dict[str, Any]:
    # {"btc": {"on_demand": 0.0001, "spot": 0.00005, "enabled": True}} becomes the fields
    # the API calls "bitcoin_on_demand", "bitcoin_spot" and "enabled-bitcoin".
    if not isinstance(per_currency, Mapping) or not per_currency:
        raise ParameterError("per_currency", "expected a non-empty mapping {currency: settings}")
    fields: dict[str, Any] = {}
    for raw_currency, settings in per_currency.items():
        currency = validate_currency(raw_currency, "per_currency")
        prefix = PER_CURRENCY_PREFIX[currency]
        if not isinstance(settings, Mapping):
            raise ParameterError("per_currency", f"settings of {currency} must be a mapping")
        for name, value in settings.items():
            if name in ("on_demand", "spot"):
                fields[f"{prefix}_{name}"] = validate_price(value, f"per_currency.{name}")
            elif name == "enabled":
                if not isinstance(value, bool):
                    raise ParameterError("per_currency", "'enabled' must be True or False")
                fields[f"enabled_{prefix}"] = value
            else:
                raise ParameterError(
                    "per_currency", f"unknown setting {name!r}: use on_demand, spot or enabled"
                )
    return fields


def validate_server_settings(
    name: object,
    *,
    availability: object = None,
    mrl: object = None,
    on_demand: object = None,
    spot: object = None,
    per_currency: object = None,
) -> SetServerSettingsRequest | SetServerSettingsPerCurrencyRequest:
    """Build a ``set_server_settings`` body: the legacy form, or the per-currency one when
    ``per_currency`` is given.

    ``on_demand``/``spot`` (legacy prices per day) and ``per_currency`` exclude each other.
    """
    fields: dict[str, Any] = {}
    if availability is not None:
        if not isinstance(availability, bool):
            raise ParameterError("availability", "expected True or False")
        fields["availability"] = availability
    if mrl is not None:
        if isinstance(mrl, bool) or not isinstance(mrl, int) or mrl <= 0:
            raise ParameterError("mrl", f"expected a whole number of hours > 0, got {mrl!r}")
        fields["mrl"] = mrl
    server = validate_server_name(name, "name")
    if per_currency is not None:
        if on_demand is not None or spot is not None:
            raise ParameterError("per_currency", "use either on_demand/spot or per_currency")
        return SetServerSettingsPerCurrencyRequest(
            name=server, **fields, **_per_currency_fields(per_currency)
        )
    if on_demand is not None:
        fields["on_demand"] = validate_price(on_demand, "on_demand")
    if spot is not None:
        fields["spot"] = validate_price(spot, "spot")
    if not fields:
        raise ParameterError("name", "nothing to change: pass at least one setting")
    return SetServerSettingsRequest(name=server, **fields)
