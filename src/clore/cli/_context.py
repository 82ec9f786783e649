"""The state of one ``clore`` invocation and the mapping of errors to exit codes.

``AppContext`` is click's ``ctx.obj``: the global options, the output settings and the SDK
client (built on first use from ``--profile``/``--base-url``/``--sandbox``; tests inject
their own client, clock and sandbox). ``exit_code_for`` is the one table from exception to
documented exit code and one-line message.

``--explain`` (docs/cli.md, *--explain*) is the SDK's explain mode on the invocation's
client: each request is printed as it is made (``explain: GET ...``; a body as indented
JSON), reads are sent, the first request that would change something is not, and the
command ends there with ``explained; nothing was changed`` and exit 0. With ``--json``
the invocation prints one document instead, on one line when it ends (after a stream's
JSON Lines): the requests, what was not sent, and the command's own document (``result``).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import click

from clore.cli._output import Output

if TYPE_CHECKING:
    from clore import Clock, Clore, ExplainedRequest
    from clore.cli._announce import Announcing
    from clore.sandbox import Sandbox

__all__ = [
    "EXIT_API",
    "EXIT_AUTH",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_RATE_LIMITED",
    "EXIT_USAGE",
    "EXPLAIN_ENV",
    "NOT_EXPLAINED",
    "AppContext",
    "CliError",
    "exit_code_for",
    "one_line",
    "pass_app",
    "report",
]

EXIT_API: Final = 1
EXIT_USAGE: Final = 2
EXIT_AUTH: Final = 3
EXIT_NOT_FOUND: Final = 4
EXIT_RATE_LIMITED: Final = 5
EXIT_INTERRUPTED: Final = 130

#: Set (to ``1``) by ``--explain`` for the whole run, so the ``clore`` commands a hook runs
#: explain too; read as ``--explain`` when set to anything but ``""`` or ``0``.
EXPLAIN_ENV: Final = "CLORE_EXPLAIN"

#: Commands that act outside the API (SSH, files, the sandbox's control plane, a server
#: of tools), which explain mode cannot hold back: refused under ``--explain`` (exit 2).
NOT_EXPLAINED: Final = {
    "config": "it changes config.toml",
    "copy": "it copies files over SSH",
    "mcp": "it serves tools to an agent",
    "sandbox": "it drives the sandbox's control plane",
    "ssh": "it runs commands over SSH",
    "verify": "it logs in to the machine over SSH",
}


def explain_from_env() -> bool:
    """True when ``CLORE_EXPLAIN`` asks for explain mode."""
    return os.environ.get(EXPLAIN_ENV, "").strip() not in ("", "0")


class CliError(click.ClickException):
    """A one-line failure with a chosen exit code (default 1)."""

    def __init__(self, message: str, exit_code: int = EXIT_API) -> None:
        super().__init__(message)
        # click declares ``exit_code`` on the class; ours is chosen per instance.
        setattr(self, "exit_code", exit_code)  # noqa: B010


class _ExplainOutput(Output):
    """``--explain --json``: the command's JSON document is kept for the one explanation
    document printed at the end (``AppContext.finish_explain``); JSON Lines pass."""

    def __init__(self, json_mode: bool) -> None:
        super().__init__(json_mode)
        self.documents: list[Any] = []

    def json(self, document: Any) -> None:
        self.documents.append(document)


class _RedactFilter(logging.Filter):
    """Replaces the API key (and anything sent as an ``auth`` header) in log records."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        from clore.config import mask_key  # the one masker; loaded only once logging is on

        text = record.getMessage()
        for secret in self.secrets:
            text = text.replace(secret, mask_key(secret))
        text = re.sub(r"(?i)(['\"]?auth['\"]?\s*[:=]\s*['\"]?)([^'\"\s,}]+)", r"\1***", text)
        record.msg, record.args = text, None
        return True


@dataclass
class AppContext:
    """Global options and lazily built services of one invocation."""

    profile: str | None = None
    base_url: str | None = None
    sandbox: bool = False
    verbose: int = 0
    json: bool = False
    #: ``--explain``: requests shown, none that changes anything sent.
    explain: bool = False
    # Injected by tests (or built on first use).
    client_instance: Clore | None = None
    clock_instance: Clock | None = None
    sandbox_instance: Sandbox | None = None
    _owned: list[Any] = field(default_factory=list)
    _handler: logging.Handler | None = field(default=None, repr=False)
    _out: Output | None = field(default=None, repr=False)
    _requests: list[ExplainedRequest] = field(default_factory=list, repr=False)
    _explained_clients: list[tuple[Any, Any]] = field(default_factory=list, repr=False)

    # ---- output -------------------------------------------------------------------------

    @property
    def out(self) -> Output:
        """The printer for this invocation (honours ``--json``)."""
        if self._out is None:
            self._out = _ExplainOutput(self.json) if self.explain else Output(self.json)
        self._out.json_mode = self.json
        return self._out

    def api(self, *, auth: bool = True) -> Announcing:
        """The client, with every call shown while it waits (pacing, retries, polling)."""
        from clore.cli._announce import Announcing

        return Announcing(self.client(auth=auth), self.out)

    # ---- services -----------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """The clock every wait and "now" of the CLI uses (the sandbox's when embedded)."""
        if self.clock_instance is None:
            if self.sandbox_instance is not None or self.sandbox:
                self.clock_instance = self.embedded_sandbox().clock
            else:
                from clore import SystemClock

                self.clock_instance = SystemClock()
        return self.clock_instance

    def server_time(self) -> float:
        """The API's "now", for every comparison with an API timestamp (``ct``,
        time left): the client's estimate when it offers one (``Clore.server_time``, fed
        by every response), else ``clock``. Against a time-scaled or advanced sandbox the
        two differ; against the real API only by clock skew."""
        server_time = getattr(self.client_instance, "server_time", None)
        if callable(server_time):
            return float(server_time())
        return self.clock.time()

    def embedded_sandbox(self) -> Sandbox:
        """The ``--sandbox`` state: a Sandbox on ``data_dir()/sandbox.db`` (the database
        ``clore sandbox serve`` uses by default), kept between runs."""
        if self.sandbox_instance is None:
            from clore.sandbox import Sandbox, default_db_path

            path = default_db_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            self.sandbox_instance = Sandbox(db=path, rate_limit=False)
            self._owned.append(self.sandbox_instance)
        return self.sandbox_instance

    def client(self, *, auth: bool = True) -> Clore:
        """The SDK client; ``auth`` commands fail with exit 3 when no API key is configured.
        Under ``--explain`` it is in the SDK's explain mode (``Clore.explain``)."""
        client = self._client(auth=auth)
        if self.explain and not any(c is client for c, _ in self._explained_clients):
            if not hasattr(client, "explain"):  # pragma: no cover - an injected stand-in
                raise CliError("--explain: this client cannot explain its requests", EXIT_USAGE)
            self._explained_clients.append((client, client.explain))
            client.explain = self._on_request
        return client

    def _client(self, *, auth: bool) -> Clore:
        if self.client_instance is not None:
            return self.client_instance
        if self.sandbox or self.sandbox_instance is not None:
            from clore import Pacing

            sandbox = self.embedded_sandbox()
            self._log_secrets([sandbox.demo_key])
            self.client_instance = sandbox.client(pacing=Pacing.disabled())
        else:
            from clore import Clore
            from clore.config import resolve

            resolved = resolve(self.profile)
            if auth and not resolved.api_key:
                raise CliError(
                    "no API key configured: run `clore config set-key` or set CLORE_API_KEY",
                    EXIT_AUTH,
                )
            self._log_secrets([resolved.api_key or ""])
            self.client_instance = Clore(
                api_key=resolved.api_key,
                base_url=self.base_url or resolved.base_url,
                profile=self.profile,
            )
        self._owned.append(self.client_instance)
        return self.client_instance

    def has_key(self) -> bool:
        """True when requests will carry an API key (always with the sandbox)."""
        if self.client_instance is not None:
            return bool(getattr(self.client_instance, "has_api_key", True))
        if self.sandbox or self.sandbox_instance is not None:
            return True
        from clore.config import resolve

        return bool(resolve(self.profile).api_key)

    @property
    def endpoint_label(self) -> str:
        """Where requests go, for cache keys and messages."""
        if self.sandbox or self.sandbox_instance is not None:
            return "sandbox:embedded"
        client = self.client_instance
        url = getattr(client, "base_url", None) if client is not None else None
        return str(url or self.base_url or "default")

    # ---- --explain ------------------------------------------------------------------------

    def _on_request(self, request: ExplainedRequest) -> None:
        """The explain callback: keep ``request``; in human form print it now."""
        self._requests.append(request)
        if self.json:
            return
        lines = [f"explain: {request}"]
        if request.body is not None:
            import json

            text = json.dumps(request.body, indent=2, ensure_ascii=False)
            lines += [f"  {line}" for line in text.splitlines()]
        click.echo("\n".join(lines), file=self.out.stdout)

    def finish_explain(self) -> None:
        """``--explain``'s ending: the outcome line (human form, when a request was held
        back), or the explanation document (``--json``). Printed once."""
        if not self.explain:
            return
        self.explain = False
        held = [r for r in self._requests if not r.sent]
        out = self._out
        if self.json:
            documents = out.documents if isinstance(out, _ExplainOutput) else []
            document = {
                "explained": True,
                "changed": False,
                "not_sent": [r.to_dict() for r in held],
                "requests": [r.to_dict() for r in self._requests],
                "result": documents[-1] if documents else None,
            }
            import msgspec

            # One line: a JSON document, and a JSON Line after a stream's events alike.
            line = msgspec.json.encode(document).decode()
            Output.json_line(out or Output(True), line)
        elif held:
            what = ", ".join(f"{r.method} {r.endpoint}" for r in held)
            click.echo(f"explained; nothing was changed ({what} not sent)", file=sys.stdout)

    def close(self) -> None:
        """Close what this invocation opened (the client; the embedded sandbox)."""
        self.finish_explain()
        for client, before in reversed(self._explained_clients):
            client.explain = before
        self._explained_clients.clear()
        for thing in reversed(self._owned):
            closer = getattr(thing, "close", None)
            if callable(closer):
                closer()
        self._owned.clear()
        handler = self._handler
        if handler is not None:
            for name in ("clore", "httpx"):
                logging.getLogger(name).removeHandler(handler)
            self._handler = None

    # ---- verbose logging ----------------------------------------------------------------

    def setup_logging(self) -> None:
        """``-v``: log requests to stderr (the SDK's and httpx's loggers), key redacted."""
        if not self.verbose or self._handler is not None:
            return
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        handler.addFilter(_RedactFilter([]))
        for name, level in (("clore", logging.DEBUG), ("httpx", logging.INFO)):
            logger = logging.getLogger(name)
            logger.setLevel(level if self.verbose == 1 else logging.DEBUG)
            logger.addHandler(handler)
        self._handler = handler

    def _log_secrets(self, secrets: list[str]) -> None:
        handler = self._handler
        if handler is not None:
            for flt in handler.filters:
                if isinstance(flt, _RedactFilter):
                    flt.secrets.extend(s for s in secrets if s)


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def _not_found(exc: BaseException) -> bool:
    from clore import OrderNotFoundError, ServerNotFoundError

    return isinstance(exc, OrderNotFoundError | ServerNotFoundError)


def exit_code_for(exc: BaseException) -> tuple[int, str]:
    """The documented exit code and the one-line message for an exception."""
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code, ""
    if isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, click.Abort) and isinstance(exc.__cause__, KeyboardInterrupt)
    ):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(exc, click.Abort):
        return EXIT_API, "aborted"
    if isinstance(exc, click.UsageError):
        if exc.ctx is not None and _missing_command(exc):
            return EXIT_USAGE, _missing_command_message(exc.ctx)
        hint = ""
        if exc.ctx is not None:
            hint = f" (see `{exc.ctx.command_path} --help`)"
        return EXIT_USAGE, f"{exc.format_message()}{hint}"
    if (exc.__cause__ is not None or not isinstance(exc, click.ClickException)) and _explained(exc):
        return 0, ""  # --explain reached a request that changes something: the outcome
    if isinstance(exc, click.ClickException):
        return exc.exit_code, exc.format_message()
    import clore
    from clore.market import FilterError, SortError

    if isinstance(exc, FilterError | SortError):
        return EXIT_USAGE, str(exc)
    httpx = sys.modules.get("httpx")  # loaded if it raised; never imported for this
    if httpx is not None and isinstance(exc, httpx.InvalidURL):
        # Commands that call httpx themselves (the sandbox control plane): a --base-url
        # httpx cannot parse is bad input, as it is for the SDK (ConfigError).
        return EXIT_USAGE, f"invalid base_url: {exc}"
    if not isinstance(exc, clore.CloreError):
        return EXIT_API, f"unexpected error: {type(exc).__name__}: {exc} (run with -v for details)"
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, clore.ParameterError | clore.InvalidInputError | clore.ConfigError):
        return EXIT_USAGE, message
    if isinstance(exc, clore.AuthenticationError):
        return EXIT_AUTH, f"{message} (check the key: `clore config show`)"
    if _not_found(exc):
        return EXIT_NOT_FOUND, message
    if isinstance(exc, clore.RateLimitError):
        return EXIT_RATE_LIMITED, f"{message} (still rate-limited after retries)"
    hint = next((text for cls, text in _hints() if isinstance(exc, cls)), "")
    return EXIT_API, f"{message}{hint}"


def _explained(exc: BaseException) -> bool:
    """True when ``exc`` is, or was raised because of, ``clore.Explained``."""
    from clore import Explained

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, Explained):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _missing_command(exc: click.UsageError) -> bool:
    """A group run without its subcommand (click either prints the whole help as the error,
    ``NoArgsIsHelpError``, or says "Missing command.")."""
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", None)
    return (no_args is not None and isinstance(exc, no_args)) or exc.message == "Missing command."


#: A group with more subcommands than this names none of them in the error line.
_MAX_LISTED: Final = 10


def _missing_command_message(ctx: click.Context) -> str:
    """``missing command: one of bid, keep, price (see `clore spot --help`)``."""
    hint = f"(see `{ctx.command_path} --help`)"
    group = ctx.command
    names = group.list_commands(ctx) if isinstance(group, click.Group) else []
    if not names or len(names) > _MAX_LISTED:
        return f"missing command {hint}"
    return f"missing command: one of {', '.join(names)} {hint}"


def one_line(message: str) -> str:
    """``message`` as one line: runs of whitespace (newlines and tabs of click's lists, or
    of a value typed with them) become one space, other control characters are escaped."""
    flat = " ".join(message.split())
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in flat)


def _hints() -> list[tuple[type[BaseException], str]]:
    """What to do about the API's known refusals (code 6), appended to their message."""
    import clore

    return [
        (clore.TooLowPriceError, " (below the server's spot minimum: see `clore server ID`)"),
        (clore.NotEnoughBalanceError, " (see `clore wallets`)"),
        (clore.ServerOfflineError, " (the server is offline or hidden)"),
        (clore.CurrencyNotAllowedError, " (its currencies: `clore server ID`; see --currency)"),
        (clore.PriceChangedError, " (the price moved since the listing: `clore server ID`)"),
        (clore.TransportError, " (check the network, or --base-url)"),
    ]


def report(exc: BaseException, *, verbose: bool) -> int:
    """Print ``exc`` as one line on stderr (a traceback too for unexpected errors with -v)."""
    code, message = exit_code_for(exc)
    if code == 0 and not message:
        return code  # an ending, not a failure (--explain's, or a clean exit)
    if message:
        # Every failure is one line on stderr (docs/cli.md, Exit codes), hints included.
        click.echo(f"clore: error: {one_line(message)}", err=True)
    known = isinstance(exc, click.ClickException | click.Abort | click.exceptions.Exit)
    if verbose and not known:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return code
