"""The options of the commands that create orders (``rent``, ``spot bid``, ``watch --rent``,
``spot keep --recover``).

``order_options`` adds them (``bid_options`` for a spot bid: no ``--lock-price``; or only
``container_options``); ``OrderSpec.from_params`` turns them into checked values (bad
ports, env words or key files exit 2 before anything is sent) and ``OrderSpec.rent_spec``
into the workflows' ``RentSpec``. ``--ssh-key``
takes only an OpenSSH public key (a file, or the key itself): a private key file is never
read past its first bytes nor sent; its ``.pub`` sibling is used instead when present.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import click

from clore.cli._automation import seconds_option
from clore.cli._context import EXIT_USAGE, CliError

if TYPE_CHECKING:
    from clore.workflows import RentSpec

__all__ = [
    "DEFAULT_IMAGE",
    "DEFAULT_PORTS",
    "OrderSpec",
    "bid_options",
    "container_options",
    "order_options",
    "parse_ports",
    "redact",
]

#: The vendor's Ubuntu 24.04 image with Jupyter and sshd (supervisor starts both).
DEFAULT_IMAGE: Final = "cloreai/jupyter:ubuntu24.04-v2"
DEFAULT_PORTS: Final = "22:tcp,8888:http"
_SECRET_WORDS: Final = ("pass", "token", "secret", "key")


def parse_ports(text: str | None, option: str = "--ports") -> dict[str, str] | None:
    """``22:tcp,8888:http`` -> ``{"22": "tcp", "8888": "http"}`` (None when empty); exit 2
    naming the option when malformed."""
    from clore import ParameterError
    from clore.rentals import parse_ports as parse

    try:
        return parse(text or "")
    except ParameterError as exc:
        raise click.BadParameter(
            f"{exc} (expected e.g. 22:tcp,8888:http)", param_hint=f"'{option}'"
        ) from None


def _ports(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> dict[str, str] | None:
    return parse_ports(value)


def _env(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str] | None:
    env: dict[str, str] = {}
    for word in values:
        name, sep, val = word.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {word!r}")
        env[name.strip()] = val
    return env or None


def _apply(fn: Callable[..., Any], options: list[Callable[[Any], Any]]) -> Callable[..., Any]:
    for option in reversed(options):
        fn = option(fn)
    return fn


def container_options(*, recovery: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """What runs in the container and how to reach it: ``--image``, ``--ports``,
    ``--ssh-key``, ``--ssh-password``, ``--env``, ``--command``, ``--jupyter-token``.

    ``recovery`` (``spot keep --recover``): no image or ports default (the kept order's
    are used) and the help says what the options are for.
    """
    tail = " for --recover" if recovery else ""
    options = [
        click.option(
            "--image",
            default=None if recovery else DEFAULT_IMAGE,
            show_default=not recovery,
            help=f"Docker image{tail} (default: "
            + ("the order's image)." if recovery else "Ubuntu 24.04 with Jupyter and SSH)."),
        ),
        click.option(
            "--ports",
            default=None if recovery else DEFAULT_PORTS,
            show_default=not recovery,
            callback=_ports,
            metavar="PORT:PROTO,...",
            help=f"Ports to expose{tail}; PROTO is tcp or http (one http port at most)"
            + ("; default: the order's." if recovery else "."),
        ),
        click.option(
            "--ssh-key",
            metavar="FILE|KEY",
            help=f"OpenSSH public key{tail}: a .pub file or the key itself (default "
            "$CLORE_SSH_KEY, else ~/.ssh/id_ed25519.pub, id_ecdsa.pub or id_rsa.pub). A "
            "private key is refused; for FILE without .pub, FILE.pub is used when it exists.",
        ),
        click.option(
            "--ssh-password", metavar="TEXT", help=f"SSH password{tail} (letters, digits)."
        ),
        click.option(
            "--env",
            "env",
            multiple=True,
            callback=_env,
            metavar="NAME=VALUE",
            help=f"Environment variable for the container{tail} (repeatable)"
            + ("; my_orders does not return env, so pass it again." if recovery else "."),
        ),
        click.option("--command", metavar="SCRIPT", help=f"Startup script{tail}."),
        click.option(
            "--jupyter-token",
            metavar="TOKEN",
            help=f"Jupyter token{tail} (generated and shown when an http port is exposed and "
            "none is given).",
        ),
    ]
    return lambda fn: _apply(fn, options)


def _creation_options(*, lock_price: bool) -> list[Callable[[Any], Any]]:
    lock = click.option(
        "--lock-price",
        is_flag=True,
        help="Refuse the order if the price changed since it was listed (required_price).",
    )
    return [
        container_options(),
        *([lock] if lock_price else []),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Print the create_order request (secrets redacted) and send nothing.",
        ),
        click.option("--wait", is_flag=True, help="Block until SSH is ready, then print access."),
        seconds_option("--timeout", 600.0, "How long --wait waits."),
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation."),
    ]


def order_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the order-creation options (container, confirmation, price lock, waiting)."""
    return _apply(fn, _creation_options(lock_price=True))


def bid_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``order_options`` without ``--lock-price``, for a spot bid (``spot bid``): a bid is
    its own price, there is no listed price to lock."""
    return _apply(fn, _creation_options(lock_price=False))


@dataclass(frozen=True)
class OrderSpec:
    """Checked order settings shared by every candidate server of one command."""

    image: str
    ports: dict[str, str] | None
    ssh_key: str | None
    ssh_key_path: Path | None
    ssh_password: str | None
    env: dict[str, str] | None
    command: str | None
    jupyter_token: str | None
    token_generated: bool
    key_default: bool = False

    @classmethod
    def from_options(
        cls,
        *,
        image: str,
        ports: dict[str, str] | None,
        ssh_key: str | Path | None,
        ssh_password: str | None,
        env: dict[str, str] | None,
        command: str | None,
        jupyter_token: str | None,
    ) -> OrderSpec:
        """Read the public key (or find the default one) and generate a Jupyter token if
        needed; a private key or a file that is not a public key exits 2, nothing sent."""
        key_text: str | None = None
        key_path: Path | None = None
        if ssh_key is not None:
            key_text, key_path = _public_key(str(ssh_key))
        elif ssh_password is None:
            key_text, key_path = _default_key()
        key_default = ssh_key is None and key_text is not None
        has_http = bool(ports) and "http" in (ports or {}).values()
        generated = jupyter_token is None and has_http
        token = secrets.token_hex(12) if generated else jupyter_token
        return cls(
            image=image,
            ports=ports,
            ssh_key=key_text,
            ssh_key_path=key_path,
            ssh_password=ssh_password,
            env=env,
            command=command,
            jupyter_token=token,
            token_generated=generated,
            key_default=key_default,
        )

    @classmethod
    def from_params(cls, params: dict[str, Any], **overrides: Any) -> OrderSpec:
        """The spec of a command decorated with ``container_options`` (its parameters by
        name); ``overrides`` replace parameters (defaults taken from an existing order)."""
        values = {**params, **overrides}
        return cls.from_options(
            image=values["image"],
            ports=values["ports"],
            ssh_key=values["ssh_key"],
            ssh_password=values["ssh_password"],
            env=values["env"],
            command=values["command"],
            jupyter_token=values["jupyter_token"],
        )

    def rent_spec(
        self, order_type: Literal["on-demand", "spot"], currency: str, *, lock_price: bool = True
    ) -> RentSpec:
        """The workflows' ``RentSpec`` for these settings (``lock_price``: an on-demand
        order's price is sent as ``required_price``)."""
        from clore.workflows import RentSpec

        return RentSpec(
            image=self.image,
            order_type=order_type,
            currency=currency,
            ports=self.ports,
            env=self.env,
            ssh_password=self.ssh_password,
            ssh_key=self.ssh_key,
            jupyter_token=self.jupyter_token,
            command=self.command,
            lock_price=lock_price,
        )

    def require_login(self) -> None:
        """Exit 2 (nothing sent) when port 22 is forwarded with neither a key nor a
        password: an order nobody could log in to."""
        from clore.rentals import login_problem

        problem = login_problem(self.ports, ssh_key=self.ssh_key, ssh_password=self.ssh_password)
        if problem is not None:
            raise CliError(problem, EXIT_USAGE)

    def key_note(self) -> str | None:
        """How the order is logged in to, for the confirmation and the dry run: the key
        file sent (``your default key`` when found, not given), the key given inline, a
        password (never shown); None when nothing is set."""
        parts: list[str] = []
        if self.ssh_key_path is not None:
            shown = _home_relative(self.ssh_key_path)
            parts.append(f"{shown} (your default key)" if self.key_default else shown)
        elif self.ssh_key is not None:
            parts.append("the public key given to --ssh-key")
        if self.ssh_password:
            parts.append("the --ssh-password (not shown)")
        return " and ".join(parts) or None

    def token_note(self) -> str | None:
        """The line that shows a generated Jupyter token (the API never returns it)."""
        if self.token_generated and self.serves_jupyter:
            return f"jupyter token: {self.jupyter_token}"
        return None

    @property
    def serves_jupyter(self) -> bool:
        """True when port 8888 is the http port and a Jupyter token is set."""
        return bool(self.jupyter_token) and (self.ports or {}).get("8888") == "http"

    def jupyter_url(self, http_url: str | None) -> str | None:
        """The Jupyter URL with its token, when port 8888 is the http port."""
        if not http_url or not self.serves_jupyter:
            return None
        return f"{http_url.rstrip('/')}/?token={self.jupyter_token}"


def _public_key(value: str) -> tuple[str, Path | None]:
    """The public key ``value`` is (the key itself) or holds (a file), with the file read;
    exit 2 naming why otherwise, never quoting what was given (it may be a private key)."""
    from clore import ParameterError
    from clore.rentals import looks_private, public_key_problem, read_public_key

    text = value.strip()
    if looks_private(text):
        raise CliError("--ssh-key: the value is a private key: give its public half instead", 2)
    if public_key_problem(text) is None:
        return text, None
    path = Path(value).expanduser()
    try:
        key = read_public_key(path, "--ssh-key")
    except ParameterError as exc:
        raise CliError(str(exc), 2) from None
    if key.instead_of is not None:
        click.echo(f"note: --ssh-key: {path} is not a public key; sending {key.path}", err=True)
    return key.text, key.path


def _home_relative(path: Path) -> str:
    """``~/.ssh/id_ed25519.pub`` for a file under the home directory, else the path."""
    try:
        return "~/" + path.absolute().relative_to(Path.home()).as_posix()
    except ValueError:
        return str(path)


def _default_key() -> tuple[str | None, Path | None]:
    """The renter's default public key (``$CLORE_SSH_KEY``, else ``~/.ssh/id_ed25519.pub``,
    ``id_ecdsa.pub``, ``id_rsa.pub``), read; (None, None) when there is none; exit 2 when
    the file found is not a public key."""
    from clore import ParameterError
    from clore.rentals import default_public_key

    try:
        key = default_public_key(param="--ssh-key")
    except ParameterError as exc:
        raise CliError(str(exc), 2) from None
    return (None, None) if key is None else (key.text, key.path)


def redact(body: dict[str, Any]) -> dict[str, Any]:
    """A create_order body safe to print: passwords, tokens, key contents, secret env hidden."""
    shown = dict(body)
    for name in ("ssh_password", "jupyter_token"):
        if shown.get(name):
            shown[name] = "<redacted>"
    if shown.get("ssh_key"):
        shown["ssh_key"] = f"<redacted: {len(str(body['ssh_key']))} characters>"
    env = shown.get("env")
    if isinstance(env, dict):
        shown["env"] = {
            k: ("<redacted>" if any(w in k.lower() for w in _SECRET_WORDS) else v)
            for k, v in env.items()
        }
    if shown.get("dockerhub_auth"):
        shown["dockerhub_auth"] = "<redacted>"
    return shown
