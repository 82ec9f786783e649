"""Named profiles in ``config.toml`` (mode 0600) and where a client's settings come from.

::

    active = "default"

    [profiles.default]
    api_key = "..."
    base_url = "https://api.clore.ai/v1"   # optional
    pacing_url = "redis://fleet-redis:6379/0"   # optional: a fleet's shared pacing

Precedence for the API key and base URL: an explicit argument, then a profile named
explicitly (argument), then the environment (``CLORE_API_KEY``, ``CLORE_BASE_URL``,
``CLORE_PROFILE`` picks the profile), then the active profile of the file, then the
defaults. The pacing store (``resolve_pacing``): ``CLORE_PACING=local`` keeps this
machine's file whatever else says; else the same order for ``pacing_url`` with
``CLORE_PACING_URL`` as its environment variable. Keys are trimmed of surrounding
whitespace wherever they are read (a shell's or editor's trailing newline); a key
holding a control or non-ASCII character is refused with an error that names the source
and the character's code point, never the key. The file is written atomically
(``clore._files.write_atomic``) with mode 0600 because it holds keys.
TOML is written here by hand: Python has no TOML writer, and the file is a table of
strings.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from clore._errors import ConfigError, ParameterError
from clore._files import write_atomic
from clore._paths import config_dir

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_PROFILE",
    "KEEP",
    "Config",
    "Profile",
    "Resolved",
    "api_key_problem",
    "config_path",
    "dumps",
    "load",
    "mask_key",
    "remove_profile",
    "resolve",
    "resolve_pacing",
    "save",
    "set_profile",
    "use",
]

DEFAULT_BASE_URL: Final = "https://api.clore.ai/v1"
DEFAULT_PROFILE: Final = "default"


class _Keep:
    """Marker: leave this setting as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()


@dataclass
class Profile:
    """One named set of settings. Its repr masks the key."""

    api_key: str | None = None
    base_url: str | None = None
    pacing_url: str | None = None

    def __repr__(self) -> str:
        key = None if self.api_key is None else mask_key(self.api_key)
        fields = f"api_key={key!r}, base_url={self.base_url!r}"
        if self.pacing_url is not None:
            from clore._redis import redact_url

            fields += f", pacing_url={redact_url(self.pacing_url)!r}"
        return f"Profile({fields})"


@dataclass
class Config:
    """The whole file: the active profile's name and every profile."""

    active: str = DEFAULT_PROFILE
    profiles: dict[str, Profile] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolved:
    """What a client uses and where the key came from."""

    api_key: str | None
    base_url: str
    profile: str | None
    source: Literal["argument", "profile", "env", "none"]

    def __repr__(self) -> str:
        key = None if self.api_key is None else mask_key(self.api_key)
        return (
            f"Resolved(api_key={key!r}, base_url={self.base_url!r}, "
            f"profile={self.profile!r}, source={self.source!r})"
        )


def mask_key(key: str) -> str:
    """A recognisable but useless form of ``key``: ``abcd…wxyz``, or ``****`` when short.

    The one masker of the package (the client's error messages, the CLI's logs and
    output). Its ends are shown only when more than 12 characters long, so at least five
    stay hidden.
    """
    if len(key) <= 12:
        return "****"
    return f"{key[:4]}…{key[-4:]}"


def config_path() -> Path:
    """Where the profiles live: ``config_dir()/config.toml``."""
    return config_dir() / "config.toml"


# --------------------------------------------------------------------------- reading


def _parse(text: str, path: Path) -> Config:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib recurses per nested array or inline table; a hostile file exhausts it.
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    active = data.get("active", DEFAULT_PROFILE)
    if not isinstance(active, str) or not active:
        raise ConfigError(f"{path}: 'active' must be a profile name")
    raw_profiles = data.get("profiles", {})
    if not isinstance(raw_profiles, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table of tables")
    profiles: dict[str, Profile] = {}
    for name, table in raw_profiles.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: profile {name!r} must be a table")
        values: dict[str, str | None] = {}
        for setting in ("api_key", "base_url", "pacing_url"):
            value = table.get(setting)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{path}: profiles.{name}.{setting} must be a string")
            values[setting] = value or None
        profiles[name] = Profile(**values)
    return Config(active=active, profiles=profiles)


def load() -> Config:
    """The configuration; a missing file is an empty one, an invalid file a ConfigError."""
    path = config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return _parse(text, path)


# --------------------------------------------------------------------------- writing


def _string(value: str) -> str:
    # A TOML basic string: escape backslash, quote and every control character.
    out = ['"']
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _key(name: str) -> str:
    bare = name and all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    return name if bare else _string(name)


def dumps(cfg: Config) -> str:
    """``cfg`` as TOML text."""
    lines = [f"active = {_string(cfg.active)}"]
    for name, profile in cfg.profiles.items():
        lines += ["", f"[profiles.{_key(name)}]"]
        if profile.api_key is not None:
            lines.append(f"api_key = {_string(profile.api_key)}")
        if profile.base_url is not None:
            lines.append(f"base_url = {_string(profile.base_url)}")
        if profile.pacing_url is not None:
            lines.append(f"pacing_url = {_string(profile.pacing_url)}")
    return "\n".join(lines) + "\n"


def save(cfg: Config) -> None:
    """Write ``cfg`` atomically with mode 0600 (the file holds API keys)."""
    write_atomic(config_path(), dumps(cfg), mode=0o600)


def set_profile(
    name: str, *, api_key: Any = KEEP, base_url: Any = KEEP, pacing_url: Any = KEEP
) -> None:
    """Create or change profile ``name`` (None removes a setting; omitted keeps it).

    The first profile written becomes the active one when the active one does not exist.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a profile needs a non-empty name")
    for setting, value in (
        ("api_key", api_key),
        ("base_url", base_url),
        ("pacing_url", pacing_url),
    ):
        if value is not KEEP and value is not None and not isinstance(value, str):
            raise ConfigError(f"{setting} must be a string")
    if isinstance(api_key, str):
        api_key = _checked_key(api_key.strip(), "api_key", ConfigError)
    if isinstance(base_url, str):
        base_url = base_url.strip()
    if isinstance(pacing_url, str) and pacing_url.strip():
        from clore._redis import check_url

        pacing_url = check_url(pacing_url, "pacing_url")
    cfg = load()
    profile = cfg.profiles.setdefault(name, Profile())
    if api_key is not KEEP:
        profile.api_key = api_key or None
    if base_url is not KEEP:
        profile.base_url = (base_url or "").rstrip("/") or None
    if pacing_url is not KEEP:
        profile.pacing_url = (pacing_url or "").strip() or None
    if cfg.active not in cfg.profiles:
        cfg.active = name
    save(cfg)


def use(name: str) -> None:
    """Make ``name`` the active profile (ConfigError when there is no such profile)."""
    cfg = load()
    if name not in cfg.profiles:
        known = ", ".join(sorted(cfg.profiles)) or "none"
        raise ConfigError(f"no profile named {name!r} (profiles: {known})")
    cfg.active = name
    save(cfg)


def remove_profile(name: str) -> None:
    """Delete profile ``name`` (ConfigError when there is no such profile)."""
    cfg = load()
    if name not in cfg.profiles:
        raise ConfigError(f"no profile named {name!r}")
    del cfg.profiles[name]
    save(cfg)


# --------------------------------------------------------------------------- resolving


def api_key_problem(key: str) -> str | None:
    """Why ``key`` (already trimmed) cannot go in an HTTP header, naming the offending
    character by code point only (never the key, never the character); None when it can."""
    for index, char in enumerate(key):
        code = ord(char)
        if 0x20 <= code <= 0x7E:
            continue
        kind = "a non-ASCII" if code > 0x7F else "a control"
        return (
            f"the key holds {kind} character (U+{code:04X}) at position {index + 1}: "
            "enter it again without it"
        )
    return None


def _checked_key(key: str, where: str, error: type[ConfigError | ParameterError]) -> str:
    """``key`` (trimmed) when it can be sent; else ``error`` naming ``where``, not the key."""
    problem = api_key_problem(key)
    if problem is None:
        return key
    if error is ParameterError:
        raise ParameterError("api_key", problem)
    raise ConfigError(f"{where}: {problem}")


def _trimmed(value: str | None) -> str | None:
    return (value or "").strip() or None


def resolve(
    profile: str | None = None, *, api_key: str | None = None, base_url: str | None = None
) -> Resolved:
    """The key and base URL a client uses, by the module's precedence rules.

    The file is read only when a setting is still missing after the arguments and the
    environment; a named profile that does not exist is a ConfigError.
    """
    if api_key is not None and not isinstance(api_key, str):
        raise ParameterError("api_key", f"expected a string, got {type(api_key).__name__}")
    api_key = _trimmed(api_key)
    base_url = _trimmed(base_url) if isinstance(base_url, str) else base_url
    env_key = _trimmed(os.environ.get("CLORE_API_KEY"))
    env_url = _trimmed(os.environ.get("CLORE_BASE_URL"))
    wanted = profile or os.environ.get("CLORE_PROFILE") or None
    explicit_profile = profile is not None

    chosen: Profile | None = None
    name: str | None = None
    missing_key = api_key is None and env_key is None
    missing_url = base_url is None and env_url is None
    if explicit_profile or missing_key or missing_url:
        cfg = load()
        name = wanted or cfg.active
        chosen = cfg.profiles.get(name)
        if chosen is None and wanted is not None:
            raise ConfigError(f"no profile named {wanted!r} in {config_path()}")
        if chosen is None:
            name = None

    # An explicitly named profile outranks the environment; the active one does not.
    file_key = _trimmed(chosen.api_key) if chosen else None
    file_url = _trimmed(chosen.base_url) if chosen else None
    key_order: list[tuple[str | None, Literal["argument", "profile", "env"]]] = [
        (api_key, "argument")
    ]
    url_order = [base_url]
    if explicit_profile:
        key_order += [(file_key, "profile"), (env_key, "env")]
        url_order += [file_url, env_url]
    else:
        key_order += [(env_key, "env"), (file_key, "profile")]
        url_order += [env_url, file_url]
    source: Literal["argument", "profile", "env", "none"] = "none"
    key: str | None = None
    for candidate, origin in key_order:
        if candidate:
            where = {
                "argument": "api_key",
                "env": "CLORE_API_KEY",
                "profile": f"{config_path()}: profiles.{name}.api_key",
            }[origin]
            error = ParameterError if origin == "argument" else ConfigError
            key, source = _checked_key(candidate, where, error), origin
            break
    url = next((u for u in url_order if u), DEFAULT_BASE_URL)
    return Resolved(api_key=key, base_url=url.rstrip("/"), profile=name, source=source)


def resolve_pacing(profile: str | None = None) -> str | None:
    """The Redis URL a client's pacing state (and its loops' ledgers) live in; None for
    this machine's file.

    ``CLORE_PACING=local`` (``clore --pacing local``) decides for the file; else a profile
    named explicitly, then ``CLORE_PACING_URL``, then the active profile (or
    ``CLORE_PROFILE``'s). Reads the file only when the environment does not decide. A URL
    that is not a Redis URL is a ConfigError naming its source, never its password.
    """
    from clore._redis import check_url

    mode = (os.environ.get("CLORE_PACING") or "").strip()
    if mode:
        if mode.lower() == "local":
            return None
        raise ConfigError(
            "CLORE_PACING: 'local' or unset (a fleet's Redis URL goes in CLORE_PACING_URL)"
        )
    env_url = _trimmed(os.environ.get("CLORE_PACING_URL"))
    if env_url is not None and profile is None:
        return check_url(env_url, "CLORE_PACING_URL")
    cfg = load()
    name = profile or os.environ.get("CLORE_PROFILE") or cfg.active
    chosen = cfg.profiles.get(name)
    if chosen is None and profile is not None:
        raise ConfigError(f"no profile named {profile!r} in {config_path()}")
    file_url = _trimmed(chosen.pacing_url) if chosen else None
    if file_url is not None:
        return check_url(file_url, f"{config_path()}: profiles.{name}.pacing_url")
    if env_url is not None:
        return check_url(env_url, "CLORE_PACING_URL")
    return None
