"""The connection to a fleet's Redis: one client per URL per process, scripts, failures.

A fleet (several machines using one API key) keeps the key's pacing state and the loops'
rental ledgers in one Redis (``clore._pacing_redis``, ``clore._ledger_redis``). This
module owns what they share: the URL (checked, and shown without credentials), one
``redis.Redis`` per URL and process (its pool is thread-safe and fork-aware), the Lua
scripts (``EVALSHA``, falling back to ``EVAL`` when the server answers ``NOSCRIPT``, after
a restart or ``SCRIPT FLUSH``), the fenced leases that the ledgers' locks and
create_order's claims on a server are made of (``Lease``, renewed by one thread per
process while held) and the failure rule: a Redis that cannot be reached is a
``FleetStoreError`` naming the URL without its password, never a silent switch to local
state, which would break the fleet's limits.

The ``redis`` package is imported on first use only (``pip install 'clore[fleet]'``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from clore._errors import CloreError, ConfigError

if TYPE_CHECKING:
    import redis

__all__ = [
    "LEASE_ACQUIRE",
    "LEASE_RELEASE",
    "LEASE_RENEW",
    "SCHEMES",
    "FleetStoreError",
    "Lease",
    "LeaseLostError",
    "Script",
    "ServerClaimedError",
    "check_url",
    "connect",
    "key_digest",
    "redact_url",
]

log = logging.getLogger("clore")

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


class ServerClaimedError(CloreError):
    """create_order waited its longest for a server that another create_order of the fleet
    (another machine, process or thread on the same key) was renting: nothing was sent.

    ``server_id`` is the server, ``holder`` who held its claim (host/pid/token), ``waited``
    how long this call waited (seconds of the client's clock).
    """

    def __init__(self, message: str, *, server_id: int, holder: str, waited: float) -> None:
        super().__init__(message)
        self.server_id = server_id
        self.holder = holder
        self.waited = waited


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


# --------------------------------------------------------------------------- leases

LEASE_ACQUIRE: Final = Script(
    """
-- KEYS lock, fence; ARGV owner, lease ms
-- -> {token, 0, ''} taken, or {false, ms left of the holder's lease, the holder's token}
local held = redis.call('GET', KEYS[1])
if held then
  return {false, redis.call('PTTL', KEYS[1]), held}
end
local fence = redis.call('INCR', KEYS[2])
local token = ARGV[1] .. ':' .. fence
redis.call('SET', KEYS[1], token, 'PX', tonumber(ARGV[2]))
return {token, 0, ''}
"""
)
LEASE_RENEW: Final = Script(
    """
-- KEYS lock, fence; ARGV token, lease ms -> 1 renewed, 0 no longer this token's (its
-- lease ended, another holder has it, or Redis lost it: a newer fence or none at all)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local fence = tonumber(string.match(ARGV[1], ':(%d+)$'))
if fence ~= tonumber(redis.call('GET', KEYS[2])) then return 0 end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
)
LEASE_RELEASE: Final = Script(
    """
-- KEYS lock; ARGV token -> 1 released, 0 not ours (any more)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def owner_name() -> str:
    """A new holder's name: this host and process, and a random part (no secrets)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


class Lease:
    """A fenced lease on one Redis key, for one holder of this process.

    ``acquire`` takes it (``SET`` with ``PX``, once nobody holds it) with the next number
    of its fence counter (``INCR``); the key's value, the ``token``, is ``owner:fence``.
    While held, the process's renewer thread extends it every quarter lease, so only a
    holder that stopped (killed, paused, cut off from Redis) loses it. ``check`` renews
    and verifies in one script that the key still holds exactly this token and that the
    fence is still the counter's: a holder that comes back after its lease ended is told
    (``LeaseLostError``) instead of acting on what is now another's. Used as a context
    manager it is released on exit (a lease that cannot be released lapses).
    """

    def __init__(self, url: str, key: str, fence_key: str, *, lease: float, what: str) -> None:
        self.url = url
        self.key = key
        self.fence_key = fence_key
        self.lease = lease
        self.what = what
        self.token: str | None = None
        self.lost = False
        self.renewed_at = 0.0  # time.monotonic() of the last renewal that held

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease * 1000))

    def _call(self, script: Script, keys: list[str], args: list[Any], doing: str) -> Any:
        import redis

        try:
            return script(connect(self.url), keys, args)
        except redis.RedisError as exc:
            raise failure(self.url, exc, doing) from None

    def acquire(self, doing: str) -> tuple[bool, float, str]:
        """Take the lease if free: (True, 0, "") or (False, seconds left of the holder's
        lease (``inf`` when it has none), the holder's name)."""
        token, left, holder = self._call(
            LEASE_ACQUIRE,
            [self.key, self.fence_key],
            [owner_name(), self._lease_ms],
            doing,
        )
        if token is None:
            held = _text(holder).rsplit(":", 1)[0]
            ms = int(left)  # -1: a key without a lease (set by hand), held until deleted
            return False, math.inf if ms == -1 else max(0.0, ms / 1000), held
        self.token, self.lost = _text(token), False
        self.renewed_at = time.monotonic()
        _renewer.add(self)
        return True, 0.0, ""

    @property
    def fence(self) -> int | None:
        """This holder's fence number (None when not held)."""
        return None if self.token is None else int(self.token.rsplit(":", 1)[1])

    def renew(self, doing: str) -> bool:
        """Extend the lease; False (and ``lost`` from then on) when it is no longer ours."""
        if self.token is None or self.lost:
            return False
        held = bool(
            self._call(LEASE_RENEW, [self.key, self.fence_key], [self.token, self._lease_ms], doing)
        )
        if held:
            self.renewed_at = time.monotonic()
        else:
            self.lost = True
            _renewer.drop(self)
        return held

    def check(self) -> None:
        """Raise ``LeaseLostError`` unless the lease is still this holder's (renewing it);
        ``FleetStoreError`` when Redis cannot tell."""
        if not self.renew(f"checking the {self.what}"):
            raise LeaseLostError(
                f"the {self.what} at {redact_url(self.url)} lapsed (its lease of "
                f"{self.lease:g} s ended, or Redis lost it)"
            )

    def release(self) -> None:
        """Give the lease up (when still ours); a Redis that cannot be told lets it lapse."""
        token, self.token = self.token, None
        _renewer.drop(self)
        if token is None or self.lost:
            return
        try:
            self._call(LEASE_RELEASE, [self.key], [token], f"releasing the {self.what}")
        except FleetStoreError as exc:
            log.debug("fleet: %s; it lapses with its lease", exc)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _Renewer:
    """Renews the leases this process holds, each every quarter of its lease (one thread)."""

    TICK: Final = 0.1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: set[Lease] = set()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, lease: Lease) -> None:
        with self._lock:
            self._leases.add(lease)
            alive = self._thread is not None and self._thread.is_alive()
            if not alive or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="clore-fleet-leases", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def drop(self, lease: Lease) -> None:
        with self._lock:
            self._leases.discard(lease)

    def _run(self) -> None:
        while True:
            with self._lock:
                leases = list(self._leases)
                if not leases:
                    self._wake.clear()
            if not leases:
                self._wake.wait()
                continue
            time.sleep(self.TICK)
            now = time.monotonic()
            for lease in leases:
                if now - lease.renewed_at < lease.lease / 4:
                    continue
                try:
                    if not lease.renew(f"renewing the {lease.what}"):
                        log.debug("fleet: the %s lapsed before its holder ended", lease.what)
                except FleetStoreError as exc:  # an outage: the lease may end; try again
                    log.debug("fleet: %s", exc)


_renewer = _Renewer()
