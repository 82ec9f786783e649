"""``clore config set-key | use | show``: API keys and profiles in config.toml (0600)."""

from __future__ import annotations

import sys
from typing import Any

import click

from clore.cli._context import AppContext, CliError, pass_app
from clore.cli._group import Group
from clore.cli._output import json_option
from clore.cli._params import ProfileName

__all__ = ["config"]


@click.group(cls=Group)
def config() -> None:
    """API keys and profiles (config.toml, mode 0600; keys are never printed)."""


@config.command("set-key")
@click.option(
    "--profile",
    "profile_name",
    type=ProfileName(),
    metavar="NAME",
    help="Profile to store the key in.",
)
@json_option
@pass_app
def set_key(app: AppContext, profile_name: str | None) -> None:
    """Store an API key (asked for without echo; piped stdin works too).

    With the global --base-url, the profile also remembers that URL.
    """
    from clore import config as cfg_module

    name = profile_name or app.profile or cfg_module.load().active
    if sys.stdin.isatty():
        key = click.prompt("API key", hide_input=True, err=True).strip()
    else:
        # Piped (`pass show clore | clore config set-key`): read one line, no prompt, and
        # no getpass warning about echo on a stream that is not a terminal.
        key = sys.stdin.readline().strip()
    if not key:
        raise CliError("no API key given (type it at the prompt, or pipe it on stdin)", 2)
    if any(ch.isspace() for ch in key):
        raise CliError("the API key must be one word without spaces", 2)
    settings: dict[str, Any] = {"api_key": key}
    if app.base_url:
        settings["base_url"] = app.base_url
    cfg_module.set_profile(name, **settings)
    masked = cfg_module.mask_key(key)
    path = str(cfg_module.config_path())
    app.out.result(
        {"profile": name, "api_key": masked, "base_url": app.base_url, "path": path},
        lambda: app.out.echo(f"saved key {masked} in profile {name!r} ({path})"),
    )


@config.command("use")
@click.argument("name")
@json_option
@pass_app
def use(app: AppContext, name: str) -> None:
    """Make profile NAME the active one."""
    from clore import config as cfg_module

    cfg_module.use(name)
    app.out.result({"active": name}, lambda: app.out.echo(f"active profile: {name}"))


@config.command("show")
@json_option
@pass_app
def show(app: AppContext) -> None:
    """Show the profiles (keys masked) and what a command would use now."""
    from clore import config as cfg_module

    cfg = cfg_module.load()
    resolved = cfg_module.resolve(app.profile, base_url=app.base_url)

    def masked(key: str | None) -> str | None:
        return None if key is None else cfg_module.mask_key(key)

    document = {
        "path": str(cfg_module.config_path()),
        "active": cfg.active,
        "profiles": {
            name: {"api_key": masked(p.api_key), "base_url": p.base_url}
            for name, p in sorted(cfg.profiles.items())
        },
        "resolved": {
            "profile": resolved.profile,
            "api_key": masked(resolved.api_key),
            "base_url": resolved.base_url,
            "source": resolved.source,
        },
    }

    def human() -> None:
        out = app.out
        out.echo(f"config file: {document['path']}")
        if not cfg.profiles:
            out.echo("no profiles yet: run `clore config set-key`")
        for name, profile in sorted(cfg.profiles.items()):
            mark = "*" if name == cfg.active else " "
            url = f"  {profile.base_url}" if profile.base_url else ""
            out.echo(f"{mark} {name}  {masked(profile.api_key) or '(no key)'}{url}")
        key = masked(resolved.api_key) or "(none)"
        out.echo(f"in use: key {key} from {resolved.source}; base URL {resolved.base_url}")

    app.out.result(document, human)
