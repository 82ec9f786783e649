"""The connection to a fleet's Redis: one client per URL per process, scripts, failures.

A fleet (several machines using one API key) keeps the key's pacing state and the loops'
rental ledgers in one Redis (``clore._pacing_redis``, ``clore._ledger_redis``). This
module owns what they share: the URL (checked, and shown without credentials), one
``redis.Redis`` per URL and process (its pool is thread-safe and fork-aware), the Lua
scripts (``EVALSHA``, falling back to ``EVAL`` when the server answers ``NOSCRIPT``, after
a restart or ``SCRIPT FLUSH``) and the failure rule: a Redis that cannot be reached is a
``FleetStoreError`` naming the URL without its password, never a silent switch to local
state, which would break the fleet's limits.

The ``redis`` package is imported on first use only (``pip install 'clore[fleet]'``).
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from clore._errors import ConfigError

if TYPE_CHECKING:
    import redis

__all__ = [
    "SCHEMES",
    "FleetStoreError",
    "LeaseLostError",
    "Script",
    "check_url",
    "connect",
    "key_digest",
    "redact_url",
]

#: URL schemes redis-py opens: TCP, TLS, a Unix socket.
SCHEMES: Final = ("redis", "rediss", "unix")
#: Seconds to wait for Redis to connect or answer; past that the store counts as down.
TIMEOUT: Final = 2.0


class FleetStoreError(ConfigError):
    """The fleet's Redis cannot be used (unreachable, refusing, misconfigured).

    Nothing was sent to the API because of it: pacing fails closed. The message names the
    URL without credentials.
    """


class LeaseLostError(FleetStoreError):
    """A lock's lease ended (or Redis lost it) before its holder wrote: the write was refused.

    Another machine may hold the lock now; acting on the stale lock could rent twice.
    """


def redact_url(url: str) -> str:
    """``url`` without user, password and query (where redis-py also reads a password)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable Redis URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def check_url(url: object, where: str) -> str:
    """``url`` trimmed when it is a Redis URL; else a ConfigError naming ``where``."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where}: expected a Redis URL (redis://host:port/db)")
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{where}: {redact_url(url)} is not a valid Redis URL") from None
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            f"{where}: {redact_url(url)} is not a Redis URL (redis://, rediss:// or unix://)"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"{where}: {redact_url(url)} names no host")
    return url


def key_digest(api_key: str | None) -> str:
    """The name a key's entries get: a hash of the key (as the local file's), never the key."""
    if not api_key:
        return "anonymous"
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def connect(url: str) -> redis.Redis:
    """The process's client for ``url`` (created on first use; connects lazily)."""
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            try:
                import redis
            except ImportError:
                raise FleetStoreError(
                    f"pacing store {redact_url(url)}: the redis package is not installed "
                    "(pip install 'clore[fleet]')"
                ) from None
            try:
                client = redis.Redis.from_url(
                    url,
                    socket_timeout=TIMEOUT,
                    socket_connect_timeout=TIMEOUT,
                    health_check_interval=30,
                )
            except ValueError as exc:
                raise FleetStoreError(f"pacing store {redact_url(url)}: {exc}") from None
            _clients[url] = client
        return client


def failure(url: str, exc: BaseException, doing: str) -> FleetStoreError:
    """The error for a Redis failure while ``doing``: one line, the URL without secrets."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    password = _password(url)
    if password:
        reason = reason.replace(password, "***")
    return FleetStoreError(f"fleet store {redact_url(url)} unreachable while {doing}: {reason}")


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class Script:
    """A Lua script run by its SHA1 (``EVALSHA``), sent whole (``EVAL``) on ``NOSCRIPT``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, client: redis.Redis, keys: list[str], args: list[Any]) -> Any:
        """Run the script atomically on the server; redis errors propagate."""
        from redis.exceptions import NoScriptError

        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # A restarted (or flushed) server has forgotten the script: EVAL sends it
            # whole, and caches it again for the next EVALSHA.
            return client.eval(self.source, len(keys), *keys, *args)
