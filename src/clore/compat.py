"""``CloreClient`` and ``CloreAPIError``: the vendor guide's client, built on ``Clore``.

The Clore.ai Developer Cookbook asks readers to paste a ``CloreClient`` class into
``clore_client.py``. Scripts written against it run unchanged with::

    from clore import CloreClient, CloreAPIError

and gain what the pasted class lacks: pacing shared by every process using the key
(instead of ``time.sleep`` after each call), retries of reads only, and a
``create_order`` that rents exactly once and returns the new order. Results are the
plain dicts and lists the guide shows; API failures raise ``CloreAPIError`` with
``code`` and ``error`` (and the original ``clore`` exception as ``__cause__``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, cast

import msgspec

from clore._client import Clore, Ports
from clore._core import ENDPOINTS
from clore._errors import APIError, ServerNotFoundError
from clore._facts import CurrencyName, OrderTypeName
from clore._pacing import Pacing

__all__ = ["CloreAPIError", "CloreClient"]


class CloreAPIError(APIError):
    """The API refused a request: ``code`` is the API code, ``error`` the code-6 string.

    ``response`` is the decoded response body. It is a ``clore.APIError`` too, so both
    ``except CloreAPIError`` and ``except clore.APIError`` catch it.
    """

    def __init__(
        self,
        code: int,
        error: str | None = None,
        response: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(code, error, body=response, **kwargs)

    @property
    def response(self) -> dict[str, Any]:
        """The decoded response body."""
        return self.body


@contextlib.contextmanager
def _as_guide_errors() -> Iterator[None]:
    try:
        yield
    except CloreAPIError:
        raise
    except APIError as exc:
        raise CloreAPIError(
            exc.code, exc.error, exc.body, status_code=exc.status_code, endpoint=exc.endpoint
        ) from exc
    except ServerNotFoundError as exc:
        raise CloreAPIError(
            6, "server-not-found", {"code": 6, "error": "server-not-found"}
        ) from exc


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value)


class CloreClient:
    """The vendor guide's ``CloreClient``, paced and exactly-once.

    ``rate_limit`` (seconds between requests) is honoured as the pacing interval when
    given; by default the API's own limit (1 s, shared by every process) applies. Extra
    keyword arguments (``base_url``, ``profile``, ``transport``, ``clock``, ``explain``,
    ...) go to ``clore.Clore``: with ``explain=callback`` every request is reported and
    none that changes anything is sent (``clore.Explained``, which is no CloreAPIError).
    """

    BASE_URL: ClassVar[str] = "https://api.clore.ai"
    ERROR_CODES: ClassVar[dict[int, str]] = {
        1: "Database error",
        2: "Invalid input",
        3: "Invalid or missing API key",
        4: "Invalid endpoint",
        5: "Rate limit exceeded",
        6: "See error field in response",
    }

    def __init__(
        self,
        api_key: str | None = None,
        timeout: float = 30,
        rate_limit: float | None = None,
        max_retries: int = 3,
        **kwargs: Any,
    ) -> None:
        if rate_limit is not None and "pacing" not in kwargs:
            kwargs["pacing"] = Pacing(min_interval=float(rate_limit))
        self.timeout = timeout
        self.max_retries = max_retries
        self.client = Clore(api_key, timeout=timeout, max_retries=max_retries, **kwargs)

    def __repr__(self) -> str:
        return f"CloreClient({self.client!r})"

    def _request(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        **_: Any,
    ) -> dict[str, Any]:
        """The guide's low-level call: ``_request("GET", "/v1/wallets")`` → the response dict.

        Goes through the same pacing and retries as every other call.
        """
        name = endpoint.strip("/").removeprefix("v1/")
        if name not in ENDPOINTS:
            raise CloreAPIError(4, None, {"code": 4})
        query = {
            key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in (params or {}).items()
        }
        with _as_guide_errors():
            return self.client._raw(name, params=query or None, body=json)

    # ---- the guide's methods ---------------------------------------------------------

    def list_servers(self) -> list[dict[str, Any]]:
        """Every marketplace server, as the API sends it."""
        return list(self._request("GET", "/v1/marketplace").get("servers", []))

    def get_server_details(self, server_id: int) -> dict[str, Any]:
        """One marketplace server by id (CloreAPIError ``server-not-found`` when absent)."""
        for server in self.list_servers():
            if str(server.get("id")) == str(server_id):
                return server
        raise CloreAPIError(6, "server-not-found", {"code": 6, "error": "server-not-found"})

    def create_order(
        self,
        server_id: int,
        image: str,
        order_type: str = "on-demand",
        currency: str = "bitcoin",
        spotprice: float | None = None,
        ports: Ports | None = None,
        ssh_password: str | None = None,
        ssh_key: str | None = None,
        jupyter_token: str | None = None,
        env: Mapping[str, str] | None = None,
        command: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Rent a server exactly once; returns the new order's record plus ``"code": 0``.

        The API itself answers only ``{"code": 0}``; the order (with its ``id``) is found
        in ``my_orders``. ``required_price`` and ``autossh_entrypoint`` are accepted too.
        """
        with _as_guide_errors():
            order = self.client.create_order(
                server_id,
                image,
                # The guide's strings are untyped; create_order checks them at run time.
                order_type=cast(OrderTypeName, order_type),
                currency=cast(CurrencyName, currency),
                spotprice=spotprice,
                ports=ports,
                ssh_password=ssh_password,
                ssh_key=ssh_key,
                jupyter_token=jupyter_token,
                env=env,
                command=command,
                **extra,
            )
        record: dict[str, Any] = _plain(order)
        return {"code": 0, **record}

    def get_orders(self, include_completed: bool = False) -> list[dict[str, Any]]:
        """Your orders as the API sends them (completed ones only when asked)."""
        params = {"return_completed": "true" if include_completed else "false"}
        return list(self._request("GET", "/v1/my_orders", params=params).get("orders", []))

    def cancel_order(self, order_id: int, issue: str | None = None) -> dict[str, Any]:
        """Cancel an order or spot offer; returns the API's answer (``{"code": 0}``)."""
        with _as_guide_errors():
            self.client.cancel_order(order_id, issue)
        return {"code": 0}

    def get_wallets(self) -> list[dict[str, Any]]:
        """Your wallets and balances."""
        return list(self._request("GET", "/v1/wallets").get("wallets", []))

    def get_my_servers(self) -> list[dict[str, Any]]:
        """The servers you host."""
        return list(self._request("GET", "/v1/my_servers").get("servers", []))

    # ---- lifetime --------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()

    def __enter__(self) -> CloreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
