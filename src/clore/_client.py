"""``Clore`` and ``AsyncClore``: drive the SDK's flows with httpx. Send, sleep, loop.

Every decision lives elsewhere — request building and decoding in ``clore._core``;
pacing, retries, create_order's reconciliation and wait_for_order's polling in
``clore._flows`` — so the two classes differ only in how they send and how they sleep.

Explain mode (``explain=callback``, ``clore._explain``) is the one decision made here, at
the point of sending: each request is reported first, and one that would change
something is not sent (``Explained`` is raised instead).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final, TypeVar

import httpx

from clore import _core, _explain, _flows, _validate
from clore._clock import Clock, SystemClock
from clore._core import Request, Response, TransportFailure
from clore._errors import (
    APIConnectionError,
    APITimeoutError,
    CloreError,
    ConfigError,
    ParameterError,
)
from clore._explain import ExplainCallback, Explained
from clore._facts import AUTH_HEADER, CurrencyName, OrderTypeName
from clore._flows import Flow, Probe, Send
from clore._pacing import Pacing, make_pacer
from clore._search import SearchPlan, rates_of, rates_server, rates_table
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
        explain: ExplainCallback | None,
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
        #: Explain mode: called with each request (redacted) before it is sent; requests
        #: that would change something are then not sent (``Explained``). None: off.
        self.explain: ExplainCallback | None = explain
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

    def _explained(self, request: Request) -> None:
        """In explain mode: report ``request``; raise ``Explained`` when it would change
        something (it is then not sent)."""
        if self.explain is None:
            return
        seen = _explain.describe(request)
        self.explain(seen)
        if not seen.sent:
            raise Explained(seen)

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
    ``explain=callback`` (also settable later as ``client.explain``): each request is
    handed to ``callback`` as a redacted ``clore.ExplainedRequest`` before it is sent;
    reads are then sent, a request that would change something (create_order,
    cancel_order, set_spot_price, set_server_settings) is not, and the call raises
    ``clore.Explained`` ("nothing was changed") instead.
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
        explain: ExplainCallback | None = None,
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
            explain=explain,
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
                    self._explained(action.request)
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
        """Every server on the marketplace (``mrl`` in hours, prices per day).

        Works without an API key. A malformed server record is skipped (and logged), not fatal.
        """
        return self._run(_flows.marketplace(self._ctx))

    def search(
        self,
        query: str | Sequence[str] = "",
        *,
        currency: CurrencyName = "bitcoin",
        sort: str = "price",
        include_rented: bool = False,
        limit: int | None = None,
        rates: Mapping[str, float] | None = None,
    ) -> list[Server]:
        """The available servers matching a query in the filter language, sorted as
        ``clore market`` sorts them (cheapest first by default).

        One ``marketplace`` request, and one ``spot_marketplace`` for the USD rates when a
        price filter is given, a key is configured and ``rates`` is not. Only servers
        that take ``currency`` and list a price in it are returned, as the CLI lists them.

        Args:
            query: Filter words, as one string split like a shell line
                (``"gpu=4090 gpus>=2 'price<3usd'"``) or a sequence of words; every word
                must match. The fields and operators: ``clore.market.FIELDS``,
                docs/cli.md (*Filters*). Empty: every server.
            currency: The payment currency prices are read in (names or aliases).
            sort: Comma-separated fields, ``-`` for descending (``"price,-reliability"``).
            include_rented: Also servers rented now.
            limit: At most this many servers (None or 0: all).
            rates: USD per unit of each currency (``SpotMarket.currency_rates_in_usd``);
                None fetches them when a price filter needs them.

        Raises:
            clore.market.FilterError, clore.market.SortError: a bad word (nothing sent);
                both are ``ValueError``.
            ParameterError: an unknown currency (nothing sent).
        """
        plan = SearchPlan.of(query, currency, sort)
        servers = self.marketplace()
        if rates is None and plan.needs_rates and self.has_api_key:
            target = rates_server(servers)
            if target is not None:
                rates = rates_of(lambda: self.spot_marketplace(target))
        return plan.select(servers, rates, include_rented=include_rented, limit=limit)

    def spot_marketplace(self, server_id: int) -> SpotMarket:
        """Spot offers on one server, with the USD rates of each currency.

        Args:
            server_id: The server's id (an int, or a string of digits).

        Raises:
            ServerNotFoundError: no server has this id.
        """
        return self._run(_flows.spot_marketplace(self._ctx, server_id))

    def my_orders(self, include_completed: bool = False) -> list[Order]:
        """Your orders (``mrl`` in seconds).

        Args:
            include_completed: Also the orders that have ended (cancelled or expired); the API
                flags every ended order ``expired``.
        """
        return self._run(_flows.my_orders(self._ctx, include_completed))

    def get_order(self, order_id: int) -> Order:
        """One of your orders by id, ended ones included (one ``my_orders`` request).

        Args:
            order_id: The order's id.

        Raises:
            OrderNotFoundError: the order is not among yours.
        """
        return self._run(_flows.get_order(self._ctx, order_id))

    def create_order(
        self,
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
    ) -> Order:
        """Rent ``server_id`` exactly once and return the new Order with its id.

        The body sent is ``clore.preview_create_order`` of the same arguments; bad arguments
        raise ``ParameterError`` before anything is sent. The API answers without the order,
        so it is found in ``my_orders``; after an uncertain attempt the call ends with the
        order found or ``OrderUnconfirmedError`` ("the order may exist"), never a second one.

        Args:
            server_id: The server to rent (from ``marketplace``).
            image: The Docker image, e.g. ``"cloreai/ubuntu22.04-cuda12"``.
            order_type: ``"on-demand"`` (a fixed price) or ``"spot"`` (a bid, needs
                ``spotprice``); ``"on_demand"`` and ``"ondemand"`` are accepted too.
            currency: What you pay in: ``"bitcoin"``, ``"CLORE-Blockchain"``,
                ``"USD-Blockchain"``, or their aliases ``"btc"``, ``"clore"``, ``"usd"``
                (the table ``Server.price_per_day`` reads too).
            spotprice: The bid per day in ``currency``, for a spot order only.
            ports: Container ports to forward: ``{"22": "tcp", "8888": "http"}`` (int keys,
                or ``"22:tcp"`` strings, accepted); at most one ``http`` port.
            ssh_password: The root password, letters and digits, at most 32.
            ssh_key: An OpenSSH public key (a private key is refused unread).
            jupyter_token: The Jupyter token, at most 32 characters.
            env: Environment variables of the container.
            command: A shell command run when the container starts.
            required_price: For an on-demand order: the price per day it must still have;
                a price that moved since is refused (``PriceChangedError``).
            autossh_entrypoint: The API's ``autossh_entrypoint`` flag, sent as given.

        Raises:
            ParameterError: a bad argument (nothing sent).
            OrderUnconfirmedError: the order may exist; look in ``my_orders``.
            ServerAlreadyRentedError, NotEnoughBalanceError, TooLowPriceError, ...: refusals.
        """
        request = preview_create_order(**_arguments(locals()))
        return self._run(_flows.create_order(self._ctx, request))

    def cancel_order(self, order_id: int, issue: str | None = None) -> None:
        """Cancel an order or spot offer.

        Cancelling an order that has already ended (a second cancel, or one that expired)
        succeeds and changes nothing: the API answers it with success, so this returns None
        as for a live order. ``clore cancel`` says so ("had already ended"), exit 0. An id
        that is not among your orders is refused with ``InvalidInputError`` (code 2).

        Args:
            order_id: The order's id.
            issue: Report a problem with the server (at most 2048 characters).

        Raises:
            ParameterError: a bad id or an issue too long (nothing sent).
            InvalidInputError: the order is not yours.
        """
        self._run(_flows.cancel_order(self._ctx, order_id, issue))

    def set_spot_price(self, order_id: int, price: float) -> None:
        """Set a spot order's bid per day.

        Raising is immediate; lowering is limited per step (``ExceededMaxStepError``) and to
        once per 600 s of server time: a lowering inside that window is refused locally,
        unsent (``SpotPriceLoweringTooSoonError``, ``wait_seconds`` says how long).

        Args:
            order_id: The spot order's id.
            price: The new bid per day, in the order's currency.
        """
        self._run(_flows.set_spot_price(self._ctx, order_id, price))

    def wallets(self) -> list[Wallet]:
        """Your wallets and balances (``balance`` may be None on legacy wallets)."""
        return self._run(_flows.wallets(self._ctx))

    def my_servers(self) -> list[MyServer]:
        """The servers you host."""
        return self._run(_flows.my_servers(self._ctx))

    def server_config(self, server_name: str) -> ServerConfig:
        """A hosted server's configuration (``mrl`` in hours).

        Args:
            server_name: The hosted server's name (as ``my_servers`` lists it).

        Raises:
            ServerNotFoundError: you host no server of that name.
        """
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
        """Change a hosted server's settings: legacy prices or ``per_currency`` ones.

        A setting left out (None) is not changed.

        Args:
            name: The hosted server's name.
            availability: True to list it publicly, False to hide it.
            mrl: The longest rental, in hours.
            on_demand: The on-demand price per day, in bitcoin (legacy form).
            spot: The minimum spot price per day, in bitcoin (legacy form).
            per_currency: ``{currency: {"on_demand": price, "spot": price, "enabled": bool}}``
                (currency names or aliases); not together with ``on_demand``/``spot``.
        """
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
        """Poll (paced) until the order is reachable; raise if it ends or vanishes.

        Reachable: provisioned and, with port 22 forwarded, its SSH banner read over TCP (no
        login is tried).

        Args:
            order_id: The order's id.
            timeout: Give up after this many seconds of the client's clock (``WaitTimeoutError``).
            poll_interval: Seconds between polls (default 2; pacing may add to it).

        Raises:
            OrderExpiredError: the order ended first.
            OrderNotFoundError: the order is not among yours.
        """
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
        explain: ExplainCallback | None = None,
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
            explain=explain,
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
                    self._explained(action.request)
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
        """``Clore.marketplace``, awaited (its docstring is copied here)."""
        return await self._run(_flows.marketplace(self._ctx))

    async def search(
        self,
        query: str | Sequence[str] = "",
        *,
        currency: CurrencyName = "bitcoin",
        sort: str = "price",
        include_rented: bool = False,
        limit: int | None = None,
        rates: Mapping[str, float] | None = None,
    ) -> list[Server]:
        """``Clore.search``, awaited (its docstring is copied here)."""
        plan = SearchPlan.of(query, currency, sort)
        servers = await self.marketplace()
        if rates is None and plan.needs_rates and self.has_api_key:
            target = rates_server(servers)
            if target is not None:
                try:
                    rates = rates_table(await self.spot_marketplace(target))
                except CloreError:
                    rates = None  # USD figures then fall back as the CLI's do
        return plan.select(servers, rates, include_rented=include_rented, limit=limit)

    async def spot_marketplace(self, server_id: int) -> SpotMarket:
        """``Clore.spot_marketplace``, awaited (its docstring is copied here)."""
        return await self._run(_flows.spot_marketplace(self._ctx, server_id))

    async def my_orders(self, include_completed: bool = False) -> list[Order]:
        """``Clore.my_orders``, awaited (its docstring is copied here)."""
        return await self._run(_flows.my_orders(self._ctx, include_completed))

    async def get_order(self, order_id: int) -> Order:
        """``Clore.get_order``, awaited (its docstring is copied here)."""
        return await self._run(_flows.get_order(self._ctx, order_id))

    async def create_order(
        self,
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
    ) -> Order:
        """``Clore.create_order``, awaited (its docstring is copied here)."""
        request = preview_create_order(**_arguments(locals()))
        return await self._run(_flows.create_order(self._ctx, request))

    async def cancel_order(self, order_id: int, issue: str | None = None) -> None:
        """``Clore.cancel_order``, awaited (its docstring is copied here)."""
        await self._run(_flows.cancel_order(self._ctx, order_id, issue))

    async def set_spot_price(self, order_id: int, price: float) -> None:
        """``Clore.set_spot_price``, awaited (its docstring is copied here)."""
        await self._run(_flows.set_spot_price(self._ctx, order_id, price))

    async def wallets(self) -> list[Wallet]:
        """``Clore.wallets``, awaited (its docstring is copied here)."""
        return await self._run(_flows.wallets(self._ctx))

    async def my_servers(self) -> list[MyServer]:
        """``Clore.my_servers``, awaited (its docstring is copied here)."""
        return await self._run(_flows.my_servers(self._ctx))

    async def server_config(self, server_name: str) -> ServerConfig:
        """``Clore.server_config``, awaited (its docstring is copied here)."""
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
        """``Clore.set_server_settings``, awaited (its docstring is copied here)."""
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
        """``Clore.renter_fees``, awaited (its docstring is copied here)."""
        return await self._run(_flows.renter_fees(self._ctx))

    async def poh_balance(self) -> PohBalance:
        """``Clore.poh_balance``, awaited (its docstring is copied here)."""
        return await self._run(_flows.poh_balance(self._ctx))

    async def wait_for_order(
        self, order_id: int, timeout: float = 600.0, poll_interval: float | None = None
    ) -> Order:
        """``Clore.wait_for_order``, awaited (its docstring is copied here)."""
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


# One docstring per method: AsyncClore's are Clore's (help(), IDEs reading __doc__).
for _name, _method in vars(AsyncClore).items():
    _twin = vars(Clore).get(_name)
    if callable(_method) and not _name.startswith("_") and _twin is not None:
        _method.__doc__ = _twin.__doc__


def _arguments(values: dict[str, Any]) -> dict[str, Any]:
    """create_order's arguments as keywords for the validator."""
    return {name: value for name, value in values.items() if name not in ("self", "__class__")}
