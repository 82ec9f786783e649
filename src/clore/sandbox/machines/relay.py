"""Public ports of a machine: a listening socket with an accept loop (``Listener``) and
the relays behind forwarded ports (``relay_tcp``, ``relay_http``).

A tcp relay connects each accepted connection to ``127.0.0.1:<container port>`` and
copies bytes both ways; nothing listening there closes the connection. The http relay
does the same, and answers ``502 Bad Gateway`` while nothing listens (no TLS, no header
rewriting: the machine's server sees the relay's ``Host`` as sent). Machines share the
host's network, so "the container port" is that port on the host's loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Awaitable, Callable

__all__ = ["BAD_GATEWAY", "Handler", "Listener", "bind_socket", "relay_http", "relay_tcp"]

log = logging.getLogger("clore.sandbox.machines")

_BAD_GATEWAY_BODY = b"502 Bad Gateway: nothing listens on the order's port\n"
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n\r\n%s" % (len(_BAD_GATEWAY_BODY), _BAD_GATEWAY_BODY)
)
_CONNECT_TIMEOUT = 5.0

Handler = Callable[[socket.socket], Awaitable[None]]


def bind_socket(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket listening on ``host:port`` (0: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Listener:
    """A TCP port on ``host`` handing each accepted socket to ``handler`` in a task.

    ``pause()`` closes the socket (connections are refused) and ``resume()`` binds the
    same port again.
    """

    def __init__(self, host: str, port: int, handler: Handler, tasks: set[asyncio.Task[None]]):
        self.host = host
        self.port = port
        self._handler = handler
        self._tasks = tasks
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None

    def open(self) -> None:
        """Bind and listen (port 0 picks a free port, kept across pause/resume)."""
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._accepting = asyncio.ensure_future(self._accept(sock))

    @property
    def listening(self) -> bool:
        return self._sock is not None

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(sock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.EINVAL):
                    return  # closed under us
                log.warning("accept on %s:%s failed: %s", self.host, self.port, exc)
                await asyncio.sleep(0.05)
                continue
            client.setblocking(False)
            task = asyncio.ensure_future(self._handle(client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, client: socket.socket) -> None:
        try:
            await self._handler(client)
        except asyncio.CancelledError:
            client.close()
            raise
        except Exception:
            log.exception("connection on %s:%s failed", self.host, self.port)
            client.close()

    def pause(self) -> None:
        """Stop listening: new connections are refused; open ones are left alone."""
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def resume(self) -> None:
        """Listen on the same port again (OSError when someone else took it meanwhile)."""
        if self._sock is None:
            self.open()

    def close(self) -> None:
        self.pause()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        pass


async def _splice(
    client: socket.socket, port: int, open_conns: set[asyncio.StreamWriter], http: bool
) -> None:
    reader, writer = await asyncio.open_connection(sock=client)
    try:
        inner = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), _CONNECT_TIMEOUT)
    except (OSError, asyncio.TimeoutError):
        if http:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(BAD_GATEWAY)
                await writer.drain()
        writer.close()
        return
    inner_reader, inner_writer = inner
    open_conns.update((writer, inner_writer))
    try:
        await asyncio.gather(_pipe(reader, inner_writer), _pipe(inner_reader, writer))
    finally:
        for w in (writer, inner_writer):
            open_conns.discard(w)
            w.close()


def relay_tcp(port: int, open_conns: set[asyncio.StreamWriter]) -> Handler:
    """A handler relaying to ``127.0.0.1:port`` (closing when nothing listens)."""
    return lambda client: _splice(client, port, open_conns, http=False)


def relay_http(port: int, open_conns: set[asyncio.StreamWriter]) -> Handler:
    """A handler relaying to ``127.0.0.1:port``, answering 502 while nothing listens."""
    return lambda client: _splice(client, port, open_conns, http=True)
