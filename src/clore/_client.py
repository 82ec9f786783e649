"""``Clore`` and ``AsyncClore``: drive the SDK's flows with httpx. Send, sleep, loop.

Every decision lives elsewhere — request building and decoding in ``clore._core``;
pacing, retries, create_order's reconciliation and wait_for_order's polling in
``clore._flows`` — so the two classes differ only in how they send and how they sleep.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final, TypeVar

import httpx

from clore import _core, _flows, _validate
from clore._clock import Clock, SystemClock
from clore._core import Request, Response, TransportFailure
from clore._errors import (
    APIConnectionError,
    APITimeoutError,
    CloreError,
    ConfigError,
    ParameterError,
)
from clore._facts import AUTH_HEADER
from clore._flows import Flow, Probe, Send
from clore._pacing import Pacing, make_pacer
from clore._validate import Ports as Ports  # re-exported: clore.compat's create_order
from clore._validate import preview_create_order
from clore._wire import (
    MyServer,
    Order,
    PohBalance,
    RenterFees,
    Server,
    ServerConfig,
    SpotMarket,
    Wallet,
)
from clore.config import mask_key, resolve

__all__ = ["AsyncClore", "Clore"]

T = TypeVar("T")


#: What the HTTP layer raises for a request that got no answer. ``InvalidURL`` is not an
#: ``httpx.HTTPError``; ``UnicodeError`` is what httpx raises for a header it cannot encode.
_TRANSPORT_ERRORS: Final = (httpx.HTTPError, httpx.InvalidURL, UnicodeError)


def _scrub(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` masked, in the forms an HTTP stack quotes it (as is, and
    escaped as a str or bytes repr, as h11 does for a header it refuses)."""
    if not secret:
        return text
    forms = {
        secret,
        repr(secret)[1:-1],
        repr(secret.encode("utf-8", "backslashreplace"))[2:-1],
    }
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, mask_key(secret))
    return text


def _probe(probe: Probe) -> bytes:
    """Connect to the probe's host and port and read what the server says first."""
    import socket
    import time

    deadline = time.monotonic() + probe.timeout
    data = b""
    try:
        with socket.create_connection((probe.host, probe.port), timeout=probe.timeout) as sock:
            while not _flows.banner_read(data):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                chunk = sock.recv(_flows.PROBE_LIMIT)
                if not chunk:
                    break
                data += chunk
    except OSError:  # refused, unreachable, unresolvable, timed out: not reachable yet
        pass
    return data


async def _aprobe(probe: Probe) -> bytes:
    """``_probe`` without blocking the event loop."""
    import asyncio
    import contextlib

    data = b""

    async def read() -> None:
        nonlocal data
        reader, writer = await asyncio.open_connection(probe.host, probe.port)
        try:
            while not _flows.banner_read(data):
                chunk = await reader.read(_flows.PROBE_LIMIT)
                if not chunk:
                    break
                data += chunk
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await asyncio.wait_for(read(), probe.timeout)
    return data


def _failure(exc: Exception, request: Request) -> TransportFailure:
    """Map an httpx exception to our error, keeping whether the request may have been sent.

    The message never carries the key: the HTTP stack may quote header values in it.
    """
    secret = request.headers.get(AUTH_HEADER)
    if isinstance(exc, UnicodeError):
        # Its text and args quote the whole value it could not encode.
        detail = "a request header holds characters HTTP cannot carry"
    else:
        detail = _scrub(str(exc) or "no details", secret)
    where = f"{request.endpoint}: {type(exc).__name__}: {detail}"
    error: CloreError
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        error = ConfigError(f"{request.endpoint}: invalid base_url: {detail}")
    elif isinstance(exc, UnicodeError):
        error = ConfigError(where)
    elif isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        error = _core.ConnectTimeoutError(where)
    elif isinstance(exc, httpx.TimeoutException):
        error = APITimeoutError(where)
    elif isinstance(exc, httpx.ConnectError):
        error = _core.ConnectError(where)
    else:
        error = APIConnectionError(where)
    return TransportFailure(error)


class _Base:
    """Configuration shared by both clients: who, where, pacing, retries."""

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str | None,
        profile: str | None,
        timeout: float,
        max_retries: int,
        clock: Clock | None,
        pacing: Pacing | None,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ParameterError("max_retries", "expected an integer >= 0")
        if _validate.finite_number(timeout) is None or timeout <= 0:
            raise ParameterError("timeout", "expected a finite number of seconds > 0")
        resolved = resolve(profile, api_key=api_key, base_url=base_url)
        self.base_url = _validate.validate_base_url(resolved.base_url)
        self.profile = resolved.profile
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.pacing = pacing or Pacing()
        real_clock = clock is None or isinstance(clock, SystemClock)
        use_file = real_clock if self.pacing.shared is None else self.pacing.shared
        self._ctx = _flows.Context(
            base_url=self.base_url,
            api_key=resolved.api_key,
            user_agent=_core.user_agent(),
            clock=clock or SystemClock(),
            pacer=make_pacer(
                self.pacing,
                resolved.api_key,
                use_file=use_file,
                profile=profile,
                real_clock=real_clock,
            ),
            max_retries=max_retries,
            timeout=float(timeout),
        )

    @property
    def clock(self) -> Clock:
        """The clock this client reads time from and sleeps on."""
        return self._ctx.clock

    def server_time(self) -> float:
        """The API server's unix time now, as estimated from its responses (no request).

        Compare API timestamps with it: ``order.time_left(client.server_time())``. The
        real API: the local clock (its ``Date`` header when that is > 5 s off); a sandbox:
        its ``x-sandbox-now``, moved on at ``time_scale``.
        """
        return self._ctx.server.now()

    @property
    def time_scale(self) -> float:
        """Server seconds per second of this client's clock: 1.0 for the real API, the
        ``--time-scale`` of a sandbox server (learned from its responses)."""
        return self._ctx.server.time_scale

    @property
    def has_api_key(self) -> bool:
        """True when a key was found (argument, environment or profile)."""
        return bool(self._ctx.api_key)

    def __repr__(self) -> str:
        key = self._ctx.api_key
        shown = None if key is None else mask_key(key)
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={shown!r})"


class Clore(_Base):
    """Synchronous client for the Clore.ai API: paced, retried, exactly-once create_order.

    ``api_key`` defaults to ``CLORE_API_KEY``, then the active profile of config.toml;
    ``base_url`` to ``CLORE_BASE_URL``, the profile's, then https://api.clore.ai/v1.
    Pass ``http_client`` (an ``httpx.Client``, not closed by ``close()``) or
    ``transport`` to control the HTTP layer, ``clock`` to control time.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        profile: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        pacing: Pacing | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both")
        super().__init__(
            api_key,
            base_url=base_url,
            profile=profile,
            timeout=timeout,
            max_retries=max_retries,
            clock=clock,
            pacing=pacing,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(transport=transport, timeout=self.timeout)

    # ---- the driver ------------------------------------------------------------------

    def _send(self, request: Request) -> Response | TransportFailure:
        try:
            reply = self._http.request(
                request.method, request.url, headers=request.headers, content=request.content
            )
        except _TRANSPORT_ERRORS as exc:
            return _failure(exc, request)
        return Response(reply.status_code, reply.headers, reply.content)

    def _run(self, flow: Flow[T]) -> T:
        answer: Any = None
        try:
            while True:
                action = flow.send(answer)
                if isinstance(action, Send):
                    answer = self._send(action.request)
                elif isinstance(action, Probe):
                    answer = _probe(action)
                else:
                    self._ctx.clock.sleep(action.seconds)
                    answer = None
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            flow.close()

    def _raw(
        self, name: str, *, params: Mapping[str, str] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """One paced call returning the response as a plain dict (for ``clore.compat``)."""
        result: dict[str, Any] = self._run(
            _flows.call(self._ctx, name, params=params, body=body, raw=True)
        )
        return result

    # ---- endpoints -------------------------------------------------------------------

    def marketplace(self) -> list[Server]:
        """Every server on the marketplace (``mrl`` in hours, prices per day)."""
        return self._run(_flows.marketplace(self._ctx))

    def spot_marketplace(self, server_id: int) -> SpotMarket:
        """Spot offers on one server; ServerNotFoundError when it does not exist."""
        return self._run(_flows.spot_marketplace(self._ctx, server_id))

    def my_orders(self, include_completed: bool = False) -> list[Order]:
        """Your orders (``mrl`` in seconds); completed ones only when asked."""
        return self._run(_flows.my_orders(self._ctx, include_completed))

    def get_order(self, order_id: int) -> Order:
        """One of your orders by id; OrderNotFoundError when absent."""
        return self._run(_flows.get_order(self._ctx, order_id))

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
        required_price: float | None = None,
        autossh_entrypoint: bool | None = None,
    ) -> Order:
        """Rent ``server_id`` exactly once and return the new Order with its id.

        The body sent is ``clore.preview_create_order`` of the same arguments.
        """
        request = preview_create_order(**_arguments(locals()))
        return self._run(_flows.create_order(self._ctx, request))

    def cancel_order(self, order_id: int, issue: str | None = None) -> None:
        """Cancel an order or spot offer; ``issue`` reports a problem with the server."""
        self._run(_flows.cancel_order(self._ctx, order_id, issue))

    def set_spot_price(self, order_id: int, price: float) -> None:
        """Set a spot order's bid per day; lowering is limited to once per 600 s."""
        self._run(_flows.set_spot_price(self._ctx, order_id, price))

    def wallets(self) -> list[Wallet]:
        """Your wallets and balances."""
        return self._run(_flows.wallets(self._ctx))

    def my_servers(self) -> list[MyServer]:
        """The servers you host."""
        return self._run(_flows.my_servers(self._ctx))

    def server_config(self, server_name: str) -> ServerConfig:
        """A hosted server's configuration (``mrl`` in hours)."""
        return self._run(_flows.server_config(self._ctx, server_name))

    def set_server_settings(
        self,
        name: str,
        *,
        availability: bool | None = None,
        mrl: int | None = None,
        on_demand: float | None = None,
        spot: float | None = None,
        per_currency: Mapping[str, Mapping[str, float | bool]] | None = None,
    ) -> None:
        """Change a hosted server's settings: legacy prices or ``per_currency`` ones."""
        body = _validate.validate_server_settings(
            name,
            availability=availability,
            mrl=mrl,
            on_demand=on_demand,
            spot=spot,
            per_currency=per_currency,
        )
        self._run(_flows.set_server_settings(self._ctx, body))

    def renter_fees(self) -> RenterFees:
        """Renter fees (percent) and creation fees per order type and currency."""
        return self._run(_flows.renter_fees(self._ctx))

    def poh_balance(self) -> PohBalance:
        """Your proof-of-holding balance."""
        return self._run(_flows.poh_balance(self._ctx))

    def wait_for_order(
        self, order_id: int, timeout: float = 600.0, poll_interval: float | None = None
    ) -> Order:
        """Poll (paced) until the order is provisioned; raise if it ends or vanishes."""
        return self._run(_flows.wait_for_order(self._ctx, order_id, timeout, poll_interval))

    # ---- lifetime --------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections this client opened."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Clore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClore(_Base):
    """Asynchronous client: the same methods as ``Clore``, as coroutines."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        profile: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        pacing: Pacing | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both")
        super().__init__(
            api_key,
            base_url=base_url,
            profile=profile,
            timeout=timeout,
            max_retries=max_retries,
            clock=clock,
            pacing=pacing,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=self.timeout)

    # ---- the driver ------------------------------------------------------------------

    async def _send(self, request: Request) -> Response | TransportFailure:
        try:
            reply = await self._http.request(
                request.method, request.url, headers=request.headers, content=request.content
            )
        except _TRANSPORT_ERRORS as exc:
            return _failure(exc, request)
        return Response(reply.status_code, reply.headers, reply.content)

    async def _run(self, flow: Flow[T]) -> T:
        answer: Any = None
        try:
            while True:
                action = flow.send(answer)
                if isinstance(action, Send):
                    answer = await self._send(action.request)
                elif isinstance(action, Probe):
                    answer = await _aprobe(action)
                else:
                    await self._ctx.clock.asleep(action.seconds)
                    answer = None
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            flow.close()

    async def _raw(
        self, name: str, *, params: Mapping[str, str] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """One paced call returning the response as a plain dict."""
        result: dict[str, Any] = await self._run(
            _flows.call(self._ctx, name, params=params, body=body, raw=True)
        )
        return result

    # ---- endpoints -------------------------------------------------------------------

    async def marketplace(self) -> list[Server]:
        """Every server on the marketplace (``mrl`` in hours, prices per day)."""
        return await self._run(_flows.marketplace(self._ctx))

    async def spot_marketplace(self, server_id: int) -> SpotMarket:
        """Spot offers on one server; ServerNotFoundError when it does not exist."""
        return await self._run(_flows.spot_marketplace(self._ctx, server_id))

    async def my_orders(self, include_completed: bool = False) -> list[Order]:
        """Your orders (``mrl`` in seconds); completed ones only when asked."""
        return await self._run(_flows.my_orders(self._ctx, include_completed))

    async def get_order(self, order_id: int) -> Order:
        """One of your orders by id; OrderNotFoundError when absent."""
        return await self._run(_flows.get_order(self._ctx, order_id))

    async def create_order(
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
        required_price: float | None = None,
        autossh_entrypoint: bool | None = None,
    ) -> Order:
        """Rent ``server_id`` exactly once and return the new Order with its id.

        The body sent is ``clore.preview_create_order`` of the same arguments.
        """
        request = preview_create_order(**_arguments(locals()))
        return await self._run(_flows.create_order(self._ctx, request))

    async def cancel_order(self, order_id: int, issue: str | None = None) -> None:
        """Cancel an order or spot offer; ``issue`` reports a problem with the server."""
        await self._run(_flows.cancel_order(self._ctx, order_id, issue))

    async def set_spot_price(self, order_id: int, price: float) -> None:
        """Set a spot order's bid per day; lowering is limited to once per 600 s."""
        await self._run(_flows.set_spot_price(self._ctx, order_id, price))

    async def wallets(self) -> list[Wallet]:
        """Your wallets and balances."""
        return await self._run(_flows.wallets(self._ctx))

    async def my_servers(self) -> list[MyServer]:
        """The servers you host."""
        return await self._run(_flows.my_servers(self._ctx))

    async def server_config(self, server_name: str) -> ServerConfig:
        """A hosted server's configuration (``mrl`` in hours)."""
        return await self._run(_flows.server_config(self._ctx, server_name))

    async def set_server_settings(
        self,
        name: str,
        *,
        availability: bool | None = None,
        mrl: int | None = None,
        on_demand: float | None = None,
        spot: float | None = None,
        per_currency: Mapping[str, Mapping[str, float | bool]] | None = None,
    ) -> None:
        """Change a hosted server's settings: legacy prices or ``per_currency`` ones."""
        body = _validate.validate_server_settings(
            name,
            availability=availability,
            mrl=mrl,
            on_demand=on_demand,
            spot=spot,
            per_currency=per_currency,
        )
        await self._run(_flows.set_server_settings(self._ctx, body))

    async def renter_fees(self) -> RenterFees:
        """Renter fees (percent) and creation fees per order type and currency."""
        return await self._run(_flows.renter_fees(self._ctx))

    async def poh_balance(self) -> PohBalance:
        """Your proof-of-holding balance."""
        return await self._run(_flows.poh_balance(self._ctx))

    async def wait_for_order(
        self, order_id: int, timeout: float = 600.0, poll_interval: float | None = None
    ) -> Order:
        """Poll (paced) until the order is provisioned; raise if it ends or vanishes."""
        return await self._run(_flows.wait_for_order(self._ctx, order_id, timeout, poll_interval))

    # ---- lifetime --------------------------------------------------------------------

    async def close(self) -> None:
        """Close the HTTP connections this client opened."""
        if self._owns_http:
            await self._http.aclose()

    async def aclose(self) -> None:
        """Alias of ``close``."""
        await self.close()

    async def __aenter__(self) -> AsyncClore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _arguments(values: dict[str, Any]) -> dict[str, Any]:
    """create_order's arguments as keywords for the validator."""
    return {name: value for name, value in values.items() if name not in ("self", "__class__")}
