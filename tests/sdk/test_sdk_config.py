"""Profiles in config.toml: written privately and atomically, read back, resolved by precedence."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from clore import ConfigError, config
from clore.config import Config, Profile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_missing_file_is_an_empty_config() -> None:
    """Without a file, load() returns the default, empty configuration."""
    assert config.load() == Config(active="default", profiles={})


def test_save_and_load_round_trip_with_awkward_strings() -> None:
    """Quotes, backslashes, newlines and unicode survive a save/load round trip."""
    cfg = Config(
        active="my profile",
        profiles={
            "my profile": Profile(api_key='k"e\\y\n\t\x01ü', base_url="https://x/v1"),
            "plain": Profile(api_key="abc"),
        },
    )
    config.save(cfg)
    assert config.load() == cfg
    assert tomllib.loads(config.config_path().read_text())["active"] == "my profile"


def test_file_is_written_with_mode_0600_and_no_temp_left() -> None:
    """The file holding keys is private, and the atomic write leaves no temp file."""
    config.set_profile("default", api_key="abc")
    path = config.config_path()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]


def test_set_profile_changes_only_what_is_given() -> None:
    """set_profile updates the given settings, keeps the others, and None removes one."""
    config.set_profile("work", api_key="k1", base_url="https://a/v1/")
    config.set_profile("work", api_key="k2")
    assert config.load().profiles["work"] == Profile(api_key="k2", base_url="https://a/v1")
    config.set_profile("work", base_url=None)
    assert config.load().profiles["work"] == Profile(api_key="k2")


def test_first_profile_becomes_active() -> None:
    """The first profile written becomes active; later ones do not change it."""
    config.set_profile("work", api_key="k1")
    config.set_profile("play", api_key="k2")
    assert config.load().active == "work"


def test_use_switches_and_refuses_unknown_profiles() -> None:
    """use() switches the active profile; an unknown name is a ConfigError listing profiles."""
    config.set_profile("work", api_key="k1")
    config.set_profile("sandbox", api_key="k2")
    config.use("sandbox")
    assert config.load().active == "sandbox"
    with pytest.raises(ConfigError, match="no profile named 'nope' \\(profiles: sandbox, work\\)"):
        config.use("nope")


def test_remove_profile() -> None:
    """remove_profile deletes a profile; removing a missing one is a ConfigError."""
    config.set_profile("work", api_key="k1")
    config.remove_profile("work")
    assert config.load().profiles == {}
    with pytest.raises(ConfigError):
        config.remove_profile("work")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("active = ", "not valid TOML"),
        ("active = 3", "'active' must be a profile name"),
        ("profiles = 3", "'profiles' must be a table"),
        ("[profiles]\nwork = 1", "profile 'work' must be a table"),
        ("[profiles.work]\napi_key = 1", "profiles.work.api_key must be a string"),
        ("active = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
        ("x = " + "{a = " * 3000 + "1" + "}" * 3000, "nested too deeply"),
    ],
)
def test_invalid_files_raise_config_error(text: str, message: str) -> None:
    """A file that is not valid TOML (nested past the parser's depth too), or has wrong types,
    raises ConfigError naming the problem."""
    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load()


def test_unknown_settings_are_ignored() -> None:
    """Settings this version does not know are tolerated."""
    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('active = "a"\ncolor = true\n[profiles.a]\napi_key = "k"\nregion = "eu"\n')
    assert config.load().profiles == {"a": Profile(api_key="k")}


# --------------------------------------------------------------------------- resolve


def test_resolve_defaults() -> None:
    """With nothing configured: no key, the public base URL, source 'none'."""
    resolved = config.resolve()
    assert (resolved.api_key, resolved.base_url, resolved.profile, resolved.source) == (
        None,
        "https://api.clore.ai/v1",
        None,
        "none",
    )


def test_environment_wins_over_the_active_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLORE_API_KEY and CLORE_BASE_URL beat the active profile of the file."""
    config.set_profile("default", api_key="file-key", base_url="https://file/v1")
    monkeypatch.setenv("CLORE_API_KEY", "env-key")
    monkeypatch.setenv("CLORE_BASE_URL", "https://env/v1")
    resolved = config.resolve()
    assert (resolved.api_key, resolved.base_url, resolved.source) == (
        "env-key",
        "https://env/v1",
        "env",
    )


def test_active_profile_fills_what_the_environment_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The env key is combined with the profile's base URL when CLORE_BASE_URL is unset."""
    config.set_profile("default", api_key="file-key", base_url="https://file/v1")
    monkeypatch.setenv("CLORE_API_KEY", "env-key")
    assert config.resolve().base_url == "https://file/v1"


def test_clore_profile_selects_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLORE_PROFILE picks a profile other than the active one."""
    config.set_profile("default", api_key="k-default")
    config.set_profile("work", api_key="k-work")
    monkeypatch.setenv("CLORE_PROFILE", "work")
    resolved = config.resolve()
    assert (resolved.api_key, resolved.profile, resolved.source) == ("k-work", "work", "profile")


def test_explicit_profile_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile named in the call (the CLI's --profile) outranks CLORE_API_KEY."""
    config.set_profile("work", api_key="k-work")
    monkeypatch.setenv("CLORE_API_KEY", "env-key")
    assert config.resolve("work").api_key == "k-work"


def test_explicit_arguments_beat_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """api_key/base_url arguments win over profile and environment."""
    config.set_profile("work", api_key="k-work", base_url="https://file/v1")
    monkeypatch.setenv("CLORE_API_KEY", "env-key")
    resolved = config.resolve("work", api_key="arg-key", base_url="https://arg/v1/")
    assert (resolved.api_key, resolved.base_url, resolved.source) == (
        "arg-key",
        "https://arg/v1",
        "argument",
    )


def test_named_profile_that_does_not_exist_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for a missing profile (argument or CLORE_PROFILE) raises ConfigError."""
    with pytest.raises(ConfigError, match="no profile named 'ghost'"):
        config.resolve("ghost")
    monkeypatch.setenv("CLORE_PROFILE", "ghost")
    with pytest.raises(ConfigError):
        config.resolve()


def test_file_is_not_read_when_arguments_and_env_suffice(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken file does not matter when key and URL come from elsewhere."""
    path = config.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("garbage = = =")
    monkeypatch.setenv("CLORE_BASE_URL", "https://env/v1")
    assert config.resolve(api_key="k").api_key == "k"


@pytest.mark.parametrize(
    ("key", "masked"),
    [("abcdefghijklmnopqrstuvwxyz", "abcd…wxyz"), ("short", "****"), ("", "****")],
)
def test_mask_key_never_shows_the_whole_key(key: str, masked: str) -> None:
    """mask_key shows at most the first and last four characters of long keys."""
    assert config.mask_key(key) == masked


@pytest.mark.parametrize(
    ("key", "masked"),
    [("abcdefghijkl", "****"), ("abcdefghijklm", "abcd…jklm")],
)
def test_mask_key_hides_a_twelve_character_key_whole(key: str, masked: str) -> None:
    """A key of 12 characters is masked whole (its ends would give away 8 of 12); from 13 on,
    its first and last four characters are shown."""
    assert config.mask_key(key) == masked


def test_reprs_mask_the_key() -> None:
    """Profile and Resolved reprs show the masked key only."""
    key = "abcdefghijklmnopqrstuvwxyz"
    assert key not in repr(Profile(api_key=key))
    assert key not in repr(config.resolve(api_key=key))


def test_mask_key_is_the_one_masker_of_the_client_and_the_cli_logs() -> None:
    """The client's error scrubbing and the CLI's log filter mask a key as mask_key does."""
    import logging

    from clore._client import _scrub
    from clore.cli._context import _RedactFilter

    key = "abcdefghijkl"
    record = logging.LogRecord("clore", logging.INFO, __file__, 1, f"sent {key}", None, None)
    _RedactFilter([key]).filter(record)
    expected = f"sent {config.mask_key(key)}"
    assert (expected, expected) == (_scrub(f"sent {key}", key), record.getMessage())
