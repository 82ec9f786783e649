"""The options of every command that creates an order (``rent``, ``spot bid``).

``order_options`` adds them; ``OrderSpec.from_options`` turns them into checked values
(bad ports, env words or key files exit 2 before anything is sent).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import click

from clore.cli._context import CliError

__all__ = ["DEFAULT_IMAGE", "DEFAULT_PORTS", "OrderSpec", "order_options", "redact"]

#: The vendor's Ubuntu 24.04 image with Jupyter and sshd (supervisor starts both).
DEFAULT_IMAGE: Final = "cloreai/jupyter:ubuntu24.04-v2"
DEFAULT_PORTS: Final = "22:tcp,8888:http"
_DEFAULT_KEYS: Final = ("id_ed25519.pub", "id_rsa.pub")
_SECRET_WORDS: Final = ("pass", "token", "secret", "key")


def _ports(_ctx: click.Context, _param: click.Parameter, value: str) -> dict[str, str] | None:
    from clore import ParameterError
    from clore._validate import validate_ports

    words = [part.strip() for part in value.split(",") if part.strip()]
    if not words:
        return None
    try:
        return validate_ports(words)
    except ParameterError as exc:
        raise click.BadParameter(f"{exc} (expected e.g. 22:tcp,8888:http)") from None


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


def order_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the order-creation options (image, ports, access, env, confirmation, waiting)."""
    options = [
        click.option(
            "--image",
            default=DEFAULT_IMAGE,
            show_default=True,
            help="Docker image to run (default: Ubuntu 24.04 with Jupyter and SSH).",
        ),
        click.option(
            "--ports",
            default=DEFAULT_PORTS,
            show_default=True,
            callback=_ports,
            metavar="PORT:PROTO,...",
            help="Ports to expose; PROTO is tcp or http (one http port at most).",
        ),
        click.option(
            "--ssh-key",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Public key file (default ~/.ssh/id_ed25519.pub or id_rsa.pub if present).",
        ),
        click.option("--ssh-password", metavar="TEXT", help="SSH password (letters, digits)."),
        click.option(
            "--env",
            "env",
            multiple=True,
            callback=_env,
            metavar="NAME=VALUE",
            help="Environment variable for the container (repeatable).",
        ),
        click.option("--command", metavar="SCRIPT", help="Startup script run in the container."),
        click.option(
            "--jupyter-token",
            metavar="TOKEN",
            help="Jupyter token (generated when an http port is exposed and none is given).",
        ),
        click.option(
            "--lock-price",
            is_flag=True,
            help="Refuse the order if the price changed since it was listed (required_price).",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Print the create_order request (secrets redacted) and send nothing.",
        ),
        click.option("--wait", is_flag=True, help="Block until SSH is ready, then print access."),
        click.option(
            "--timeout",
            type=click.FloatRange(min=1),
            default=600.0,
            show_default=True,
            metavar="SECONDS",
            help="How long --wait waits.",
        ),
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


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

    @classmethod
    def from_options(
        cls,
        *,
        image: str,
        ports: dict[str, str] | None,
        ssh_key: Path | None,
        ssh_password: str | None,
        env: dict[str, str] | None,
        command: str | None,
        jupyter_token: str | None,
    ) -> OrderSpec:
        """Read the key file (or find the default one) and generate a Jupyter token if needed."""
        key_path = ssh_key
        if key_path is None and ssh_password is None:
            ssh_dir = Path.home() / ".ssh"
            key_path = next((ssh_dir / n for n in _DEFAULT_KEYS if (ssh_dir / n).is_file()), None)
        key_text: str | None = None
        if key_path is not None:
            try:
                key_text = key_path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise CliError(f"--ssh-key: cannot read {key_path}: {exc}", 2) from None
            if not key_text:
                raise CliError(f"--ssh-key: {key_path} is empty", 2)
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
        )

    @property
    def serves_jupyter(self) -> bool:
        """True when port 8888 is the http port and a Jupyter token is set."""
        return bool(self.jupyter_token) and (self.ports or {}).get("8888") == "http"

    def jupyter_url(self, http_url: str | None) -> str | None:
        """The Jupyter URL with its token, when port 8888 is the http port."""
        if not http_url or not self.serves_jupyter:
            return None
        return f"{http_url.rstrip('/')}/?token={self.jupyter_token}"


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
