"""clore: SDK, CLI, sandbox and automation for the Clore.ai GPU marketplace.

Names are imported lazily so that ``clore --help`` starts without loading httpx,
msgspec or rich; ``from clore import Clore`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from clore._version import __version__

if TYPE_CHECKING:
    from clore._client import AsyncClore, Clore
    from clore._errors import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        ApplicationError,
        AuthenticationError,
        CloreError,
        ConfigError,
        CurrencyNotAllowedError,
        DatabaseError,
        ExceededMaxStepError,
        InvalidEndpointError,
        InvalidInputError,
        NotEnoughBalanceError,
        OrderError,
        OrderExpiredError,
        OrderNotFoundError,
        OrderUnconfirmedError,
        ParameterError,
        PriceChangedError,
        RateLimitError,
        ServerAlreadyRentedError,
        ServerNotFoundError,
        ServerOfflineError,
        SpotPriceLoweringTooSoonError,
        TooLowPriceError,
        TransportError,
        UnexpectedResponseError,
        WaitTimeoutError,
    )
    from clore._pacing import Pacing
    from clore._wire import (
        CURRENCIES,
        MyServer,
        Order,
        PohBalance,
        RenterFees,
        Server,
        ServerConfig,
        SpotMarket,
        SpotOffer,
        Wallet,
    )
    from clore.compat import CloreAPIError, CloreClient

_EXPORTS: dict[str, str] = {
    "AsyncClore": "clore._client",
    "Clore": "clore._client",
    "CloreAPIError": "clore.compat",
    "CloreClient": "clore.compat",
    "CURRENCIES": "clore._wire",
    "MyServer": "clore._wire",
    "Order": "clore._wire",
    "Pacing": "clore._pacing",
    "PohBalance": "clore._wire",
    "RenterFees": "clore._wire",
    "Server": "clore._wire",
    "ServerConfig": "clore._wire",
    "SpotMarket": "clore._wire",
    "SpotOffer": "clore._wire",
    "Wallet": "clore._wire",
}
for _name in (
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "ApplicationError",
    "AuthenticationError",
    "CloreError",
    "ConfigError",
    "CurrencyNotAllowedError",
    "DatabaseError",
    "ExceededMaxStepError",
    "InvalidEndpointError",
    "InvalidInputError",
    "NotEnoughBalanceError",
    "OrderError",
    "OrderExpiredError",
    "OrderNotFoundError",
    "OrderUnconfirmedError",
    "ParameterError",
    "PriceChangedError",
    "RateLimitError",
    "ServerAlreadyRentedError",
    "ServerNotFoundError",
    "ServerOfflineError",
    "SpotPriceLoweringTooSoonError",
    "TooLowPriceError",
    "TransportError",
    "UnexpectedResponseError",
    "WaitTimeoutError",
):
    _EXPORTS[_name] = "clore._errors"

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'clore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
