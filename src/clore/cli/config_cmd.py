"""``clore config set-key | use | remove | show``: API keys and profiles in config.toml
(0600; a key is never printed, only its mask).

``set-key`` checks the key before saving it with one request (``wallets``, paced like any
other, no retry) to the base URL the profile would use: a key the API refuses (code 3)
is not saved (exit 3), nor one whose base URL is not the API's (``invalid endpoint``:
exit 2); a check that cannot be made (the network, a rate limit) saves the key with a
warning saying it is unchecked. ``--no-check`` saves without the request; under
``--sandbox`` nothing is checked (the embedded sandbox has its own key).
``remove`` never makes another profile active: a command then has no profile key until
``config use`` picks one (a silent switch would spend another account's money).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from clore.cli._context import EXIT_AUTH, EXIT_USAGE, AppContext, CliError, pass_app
from clore.cli._group import Group
from clore.cli._output import json_option
from clore.cli._params import ProfileName

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from clore.config import Config

__all__ = ["config"]


@click.group(cls=Group)
def config() -> None:
    """API keys and profiles (config.toml, mode 0600; keys are never printed)."""


def _read_key() -> str:
    """The key typed at a prompt (no echo) or piped on stdin; exit 2 before any request
    when it is empty, more than one word, or not sendable in a header."""
    from clore.config import api_key_problem

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
    problem = api_key_problem(key)
    if problem is not None:
        raise CliError(problem, EXIT_USAGE)
    return key


def _base_url_for(app: AppContext, cfg: Config, name: str) -> str:
    """The base URL a command using profile ``name`` would send to: ``--base-url``, the
    profile's, ``CLORE_BASE_URL``, the default."""
    from clore.config import DEFAULT_BASE_URL

    existing = cfg.profiles.get(name)
    for url in (app.base_url, existing and existing.base_url, os.environ.get("CLORE_BASE_URL")):
        if url and url.strip():
            return url.strip().rstrip("/")
    return DEFAULT_BASE_URL


def _check(key: str, base_url: str) -> str | None:
    """Send one ``wallets`` with ``key``: None when the API accepts it, why it is unchecked
    when the check could not be made; exit 3 when the key is refused, 2 when the URL is
    not the API's."""
    from clore import AuthenticationError, Clore, CloreError, ConfigError, InvalidEndpointError
    from clore.config import mask_key

    try:
        with Clore(api_key=key, base_url=base_url, max_retries=0) as client:
            client.wallets()
    except AuthenticationError as exc:
        raise CliError(
            f"the API at {base_url} refused the key {mask_key(key)} ({exc.error or 'code 3'}); "
            "not saved (--no-check saves it unchecked)",
            EXIT_AUTH,
        ) from None
    except InvalidEndpointError:
        raise CliError(
            f"{base_url} answered 'invalid endpoint': is it the API's base URL (it ends in "
            "/v1)? The key was not saved",
            EXIT_USAGE,
        ) from None
    except ConfigError:
        raise
    except CloreError as exc:
        return f"could not check it ({exc})"
    return None


@config.command("set-key")
@click.option(
    "--profile",
    "profile_name",
    type=ProfileName(),
    metavar="NAME",
    help="Profile to store the key in.",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="Save the key without the one request that checks the API accepts it.",
)
@json_option
@pass_app
def set_key(app: AppContext, profile_name: str | None, no_check: bool) -> None:
    """Store an API key (asked for without echo; piped stdin works too).

    The key is checked first with one request (wallets) to the base URL the profile uses:
    a key the API refuses is not saved (exit 3). --no-check skips the request. With the
    global --base-url, the profile also remembers that URL.
    """
    from clore import config as cfg_module

    cfg = cfg_module.load()
    name = profile_name or app.profile or cfg.active
    key = _read_key()
    base_url = _base_url_for(app, cfg, name)
    if no_check:
        note: str | None = "not checked (--no-check)"
    elif app.sandbox or app.sandbox_instance is not None:
        note = "not checked (--sandbox uses the sandbox's own key)"
    else:
        note = _check(key, base_url)
        if note is not None:
            app.out.warn(f"{note}; saving it unchecked")
    settings: dict[str, Any] = {"api_key": key}
    if app.base_url:
        settings["base_url"] = app.base_url
    cfg_module.set_profile(name, **settings)
    masked = cfg_module.mask_key(key)
    path = str(cfg_module.config_path())
    said = "the API accepted it" if note is None else note
    app.out.result(
        {
            "profile": name,
            "api_key": masked,
            "base_url": app.base_url,
            "path": path,
            "checked": note is None,
            "note": note,
        },
        lambda: app.out.echo(f"saved key {masked} in profile {name!r} ({path}); {said}"),
    )


def _complete_profile(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    from clore.cli._completion import complete_profiles

    return complete_profiles(incomplete)


@config.command("use")
@click.argument("name", shell_complete=_complete_profile)
@json_option
@pass_app
def use(app: AppContext, name: str) -> None:
    """Make profile NAME the active one."""
    from clore import config as cfg_module

    cfg_module.use(name)
    app.out.result({"active": name}, lambda: app.out.echo(f"active profile: {name}"))


@config.command("remove")
@click.argument("name", shell_complete=_complete_profile)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_app
def remove(app: AppContext, name: str, yes: bool) -> None:
    """Delete profile NAME and its key from config.toml.

    Removing the active profile makes no other one active: `clore config use NAME`
    chooses the next (commands meanwhile have no profile key).
    """
    from clore import config as cfg_module

    cfg = cfg_module.load()
    profile = cfg.profiles.get(name)
    if profile is None:
        known = ", ".join(sorted(cfg.profiles)) or "none"
        raise CliError(f"no profile named {name!r} (profiles: {known})", EXIT_USAGE)
    if not yes:
        key = cfg_module.mask_key(profile.api_key) if profile.api_key else "no key"
        try:
            confirmed = click.confirm(f"Remove profile {name!r} ({key})?", err=True)
        except click.Abort:
            click.echo(err=True)
            confirmed = False
        if not confirmed:
            raise CliError("not confirmed; nothing was removed (--yes skips the question)", 1)
    cfg_module.remove_profile(name)
    was_active = name == cfg.active
    left = sorted(set(cfg.profiles) - {name})

    def human() -> None:
        app.out.echo(f"removed profile {name!r}")
        if was_active:
            pick = f" (profiles: {', '.join(left)})" if left else ""
            app.out.warn(
                f"{name!r} was the active profile; `clore config use NAME` picks another{pick}"
            )

    app.out.result({"removed": name, "was_active": was_active, "profiles": left}, human)


@config.command("show")
@json_option
@pass_app
def show(app: AppContext) -> None:
    """Show the profiles (keys masked), the active one, and what a command would use now.

    Under --sandbox the embedded sandbox is used: no profile, key or base URL applies.
    """
    from clore import config as cfg_module

    cfg = cfg_module.load()
    sandbox = app.sandbox or app.sandbox_instance is not None

    def masked(key: str | None) -> str | None:
        return None if key is None else cfg_module.mask_key(key)

    if sandbox:
        resolved: dict[str, Any] = {
            "profile": None,
            "api_key": None,
            "base_url": None,
            "source": "sandbox",
        }
    else:
        found = cfg_module.resolve(app.profile, base_url=app.base_url)
        resolved = {
            "profile": found.profile,
            "api_key": masked(found.api_key),
            "base_url": found.base_url,
            "source": found.source,
        }
    document = {
        "path": str(cfg_module.config_path()),
        "active": cfg.active,
        "profiles": {
            name: {"api_key": masked(p.api_key), "base_url": p.base_url}
            for name, p in sorted(cfg.profiles.items())
        },
        "sandbox": sandbox,
        "resolved": resolved,
    }

    def human() -> None:
        out = app.out
        out.echo(f"config file  {document['path']}")
        missing = "" if cfg.active in cfg.profiles else " (no such profile yet)"
        out.echo(f"active       {cfg.active}{missing}")
        if not cfg.profiles:
            out.echo("profiles     none yet: run `clore config set-key`")
        else:
            out.echo("profiles")
            names = sorted(cfg.profiles)
            width = max(len(n) for n in names)
            keys = {n: masked(cfg.profiles[n].api_key) or "(no key)" for n in names}
            key_width = max(len(k) for k in keys.values())
            for n in names:
                mark = "*" if n == cfg.active else " "
                url = cfg.profiles[n].base_url or ""
                out.echo(f"  {mark} {n:<{width}}  {keys[n]:<{key_width}}  {url}".rstrip())
        out.echo(f"in use       {_in_use(resolved, sandbox)}")

    app.out.result(document, human)


def _in_use(resolved: dict[str, Any], sandbox: bool) -> str:
    """What a command would use now, in words."""
    if sandbox:
        return "the embedded sandbox (--sandbox): its own key; profiles and base URLs unused"
    where = {
        "profile": f"profile {resolved['profile']}",
        "env": "CLORE_API_KEY",
        "argument": "the command line",
    }.get(resolved["source"])
    key = f"key {resolved['api_key']} from {where}" if where else "no key (`clore config set-key`)"
    return f"{key}; base URL {resolved['base_url']}"
