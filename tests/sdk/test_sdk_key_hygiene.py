"""A mistyped API key never leaks: blanks around it are trimmed, a key holding control or
non-ASCII characters is refused without being echoed, and transport errors never carry it.

The key is built from two distinctive halves around the bad character, so a leak of either
half (the key split by an escape, a quoted header value) is caught by the greps.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback
from collections.abc import Iterator

import httpx
import pytest

import clore
from _stub.stub_server import serve
from _stub.wire import Wire
from clore import AsyncClore, Clore, ConfigError, ParameterError, config
from clore._clock import ManualClock
from clore.config import Config, Profile
from clore.sandbox import BASE_URL, Sandbox

LEFT = "Zq7xLEFTHALF9k"
RIGHT = "RIGHTHALF3pW8vQ"
CORE = LEFT + RIGHT

#: Surrounding whitespace, as shells, editors and copy-paste leave it: trimmed, then used.
TRIMMED = [
    CORE + "\n",
    CORE + "\r\n",
    CORE + " ",
    " " + CORE,
    "\t" + CORE + "\t\n",
    CORE + "\u00a0",
]

#: A bad character inside the key: refused. (name, character)
INNER = [
    ("newline", "\n"),
    ("carriage return", "\r"),
    ("tab", "\t"),
    ("NUL", "\x00"),
    ("SOH", "\x01"),
    ("escape", "\x1b"),
    ("DEL", "\x7f"),
    ("latin-1 letter", "é"),
    ("non-latin-1 symbol", "€"),
    ("zero-width space", "\u200b"),
    ("no-break space", "\u00a0"),
    ("emoji", "\U0001f511"),
    ("C1 control", "\x85"),
]


def _bad(char: str) -> str:
    return LEFT + char + RIGHT


def _leaks(text: str) -> bool:
    return LEFT in text or RIGHT in text


def _assert_clean(exc: BaseException, char: str | None = None) -> None:
    """Neither half of the key (nor the bad character) in str, repr or the traceback."""
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for text in texts:
        assert not _leaks(text), text
    if char is not None:
        assert char not in str(exc) and char not in repr(exc)
    assert len(str(exc).splitlines()) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG, httpx's and httpcore's included."""
    with caplog.at_level(logging.DEBUG):
        for name in ("httpx", "httpcore", "clore"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        yield caplog
    for name in ("httpx", "httpcore", "clore"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def _assert_logs_clean(logs: pytest.LogCaptureFixture) -> None:
    assert logs.records, "expected the transports to log at DEBUG"
    for record in logs.records:
        assert not _leaks(record.getMessage()), record.getMessage()
    assert not _leaks(logs.text)


# --------------------------------------------------------------------------- refusing


@pytest.mark.parametrize(("name", "char"), INNER, ids=[n for n, _ in INNER])
def test_an_argument_key_with_a_bad_character_is_refused_unechoed(
    name: str, char: str, wire: Wire, debug_logs: pytest.LogCaptureFixture
) -> None:
    """Clore(api_key=...) with a control or non-ASCII character inside raises ParameterError
    (exit 2) naming the kind of character, never the key or the character; nothing is sent."""
    for cls in (Clore, AsyncClore):
        with pytest.raises(ParameterError) as info:
            cls(_bad(char), base_url=BASE_URL, clock=ManualClock())
        assert info.value.param == "api_key"
        assert ("non-ASCII" if ord(char) > 0x7F else "control") in str(info.value)
        _assert_clean(info.value, char)
    assert wire.seen == []
    for record in debug_logs.records:
        assert not _leaks(record.getMessage())


@pytest.mark.parametrize(("name", "char"), INNER, ids=[n for n, _ in INNER])
def test_an_environment_key_with_a_bad_character_is_refused_unechoed(
    name: str, char: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLORE_API_KEY with a bad character inside: ConfigError naming the variable, not the key."""
    if char == "\x00":
        pytest.skip("an environment variable cannot hold NUL")
    monkeypatch.setenv("CLORE_API_KEY", _bad(char))
    with pytest.raises(ConfigError) as info:
        Clore(base_url=BASE_URL, clock=ManualClock())
    assert "CLORE_API_KEY" in str(info.value)
    _assert_clean(info.value, char)
    with pytest.raises(ConfigError) as resolved:
        config.resolve()
    _assert_clean(resolved.value, char)


@pytest.mark.parametrize(("name", "char"), INNER, ids=[n for n, _ in INNER])
def test_a_profile_key_with_a_bad_character_is_refused_unechoed(name: str, char: str) -> None:
    """A config.toml key with a bad character: ConfigError naming the profile, not the key."""
    config.save(Config(profiles={"default": Profile(api_key=_bad(char))}))
    with pytest.raises(ConfigError) as info:
        Clore(base_url=BASE_URL, clock=ManualClock())
    assert "profiles.default.api_key" in str(info.value)
    _assert_clean(info.value, char)


@pytest.mark.parametrize(("name", "char"), INNER, ids=[n for n, _ in INNER])
def test_set_profile_refuses_a_key_with_a_bad_character(name: str, char: str) -> None:
    """config.set_profile (what `config set-key` calls) refuses such a key and writes nothing."""
    with pytest.raises(ConfigError) as info:
        config.set_profile("default", api_key=_bad(char))
    _assert_clean(info.value, char)
    assert not config.config_path().exists()


def test_a_lone_surrogate_is_refused_unechoed() -> None:
    """A key holding a lone surrogate (undecodable input) is refused like any non-ASCII one."""
    with pytest.raises(ParameterError) as info:
        Clore(_bad("\ud800"), base_url=BASE_URL, clock=ManualClock())
    _assert_clean(info.value, "\ud800")


def test_a_non_string_key_is_refused() -> None:
    """api_key=b'...' is a ParameterError, not an httpx TypeError at the first request."""
    with pytest.raises(ParameterError) as info:
        Clore(CORE.encode(), base_url=BASE_URL, clock=ManualClock())  # type: ignore[arg-type]
    _assert_clean(info.value)


# --------------------------------------------------------------------------- trimming


@pytest.mark.parametrize("key", TRIMMED, ids=repr)
def test_surrounding_whitespace_is_trimmed_in_every_source(
    key: str, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """Argument, environment and profile keys are sent without their surrounding blanks."""
    with sandbox.store.write() as repo:  # the demo user's key becomes CORE
        demo = repo.users_of_kind("demo")[0]
        demo.api_key = CORE
        repo.update_user(demo)

    def sent_key(client: Clore) -> str:
        with client:
            client.wallets()
        assert wire.seen[-1].code == 0 and wire.rejected == 0  # the sandbox knew the key
        clock.advance(1)  # the next client's first request is a second later
        return wire.seen[-1].headers["auth"]

    assert sent_key(Clore(key, base_url=BASE_URL, transport=wire.transport(), clock=clock)) == CORE
    monkeypatch.setenv("CLORE_API_KEY", key)
    assert sent_key(Clore(base_url=BASE_URL, transport=wire.transport(), clock=clock)) == CORE
    monkeypatch.delenv("CLORE_API_KEY")
    config.save(Config(profiles={"default": Profile(api_key=key)}))
    assert sent_key(Clore(base_url=BASE_URL, transport=wire.transport(), clock=clock)) == CORE
    assert config.resolve().api_key == CORE


def test_a_blank_key_counts_as_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLORE_API_KEY=' \\n' is no key: the profile's key is used, else there is none."""
    monkeypatch.setenv("CLORE_API_KEY", " \n")
    assert (config.resolve().api_key, config.resolve().source) == (None, "none")
    config.set_profile("default", api_key=f" {CORE}\n")
    assert (config.resolve().api_key, config.resolve().source) == (CORE, "profile")
    assert config.load().profiles["default"].api_key == CORE


@pytest.mark.parametrize("key", TRIMMED, ids=repr)
def test_a_trimmed_key_over_real_sockets_never_reaches_logs_or_errors(
    key: str, monkeypatch: pytest.MonkeyPatch, debug_logs: pytest.LogCaptureFixture
) -> None:
    """Over real loopback HTTP (httpcore and h11 at DEBUG): a success, then a refused
    connection; the key is in no log record and no exception."""
    monkeypatch.setenv("CLORE_API_KEY", key)
    with serve(interval=0.0) as (url, stats), Clore(base_url=url, clock=ManualClock()) as client:
        client.wallets()
    assert [seen_key for _, seen_key, _ in stats.requests] == [CORE]
    closed = f"http://127.0.0.1:{_closed_port()}/v1"
    client = Clore(base_url=closed, clock=ManualClock(), max_retries=0)
    with client, pytest.raises(clore.APIConnectionError) as info:
        client.wallets()
    _assert_clean(info.value)
    _assert_logs_clean(debug_logs)


def test_the_async_client_over_real_sockets_never_leaks_a_trimmed_key(
    monkeypatch: pytest.MonkeyPatch, debug_logs: pytest.LogCaptureFixture
) -> None:
    """AsyncClore, the same: trailing newline trimmed, nothing in logs or errors."""
    monkeypatch.setenv("CLORE_API_KEY", CORE + "\n")

    async def scenario(url: str, closed: str) -> BaseException:
        async with AsyncClore(base_url=url, clock=ManualClock(), max_retries=0) as client:
            await client.wallets()
        async with AsyncClore(base_url=closed, clock=ManualClock(), max_retries=0) as client:
            try:
                await client.wallets()
            except clore.APIConnectionError as exc:
                return exc
        raise AssertionError("the closed port answered")

    with serve(interval=0.0) as (url, stats):
        error = asyncio.run(scenario(url, f"http://127.0.0.1:{_closed_port()}/v1"))
    assert [seen_key for _, seen_key, _ in stats.requests] == [CORE]
    _assert_clean(error)
    _assert_logs_clean(debug_logs)


# --------------------------------------------------------------------------- scrubbing


def _echoing_transport_error(request: httpx.Request) -> httpx.Response:
    # What h11 says about a header it refuses: the value, quoted as bytes.
    value = request.headers["auth"].encode()
    raise httpx.LocalProtocolError(f"Illegal header value {value!r} ({request.headers['auth']})")


def test_a_transport_error_quoting_the_key_is_scrubbed_sync(clock: ManualClock) -> None:
    """Clore: a transport exception whose text holds the key becomes an APIConnectionError
    whose text does not."""
    c = Clore(CORE, base_url=BASE_URL, transport=httpx.MockTransport(_echoing_transport_error),
              clock=clock, max_retries=0)  # fmt: skip
    with pytest.raises(clore.APIConnectionError) as info:
        c.wallets()
    _assert_clean(info.value)
    assert "wallets: LocalProtocolError: Illegal header value" in str(info.value)


async def test_a_transport_error_quoting_the_key_is_scrubbed_async(clock: ManualClock) -> None:
    """AsyncClore: the same scrubbing."""

    async def handler(request: httpx.Request) -> httpx.Response:
        return _echoing_transport_error(request)

    async with AsyncClore(
        CORE, base_url=BASE_URL, transport=httpx.MockTransport(handler), clock=clock, max_retries=0
    ) as c:
        with pytest.raises(clore.APIConnectionError) as info:
            await c.wallets()
    _assert_clean(info.value)


def test_an_encoding_failure_in_the_http_layer_is_a_config_error_unechoed(
    clock: ManualClock,
) -> None:
    """A UnicodeEncodeError from the HTTP stack (it quotes the whole header value) becomes
    a one-line ConfigError without the value, not an escaping UnicodeEncodeError."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise UnicodeEncodeError("ascii", CORE + "€", len(CORE), len(CORE) + 1, "out of range")

    c = Clore(CORE, base_url=BASE_URL, transport=httpx.MockTransport(refuse), clock=clock)
    with pytest.raises(ConfigError) as info:
        c.wallets()
    _assert_clean(info.value)
    assert clock.slept == []
