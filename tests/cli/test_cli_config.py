"""clore config set-key / use / show: keys stored privately, never printed.

These save with --no-check (the check is one request to the base URL: the real API's by
default); test_cli_small_ones checks keys against a sandbox server.
"""

from __future__ import annotations

import stat

from click.testing import CliRunner

from clore import config
from clore.cli import cli

KEY = "sk-live-0123456789abcdefghijklmnop"


def _run(*args: str, input: str | None = None) -> object:
    return CliRunner().invoke(cli, list(args), input=input)


def test_set_key_stores_the_key_without_echoing_it() -> None:
    """The key is read without echo, saved 0600 and only its mask is printed."""
    result = CliRunner().invoke(cli, ["config", "set-key", "--no-check"], input=KEY + "\n")
    assert result.exit_code == 0, result.output
    assert KEY not in result.output
    assert config.mask_key(KEY) in result.stdout
    assert config.load().profiles["default"].api_key == KEY
    assert stat.S_IMODE(config.config_path().stat().st_mode) == 0o600


def test_set_key_for_a_named_profile_with_a_base_url() -> None:
    """--profile and the global --base-url go into that profile."""
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "--base-url",
            "http://127.0.0.1:8765/v1",
            "config",
            "set-key",
            "--profile",
            "sbx",
            "--no-check",
        ],
        input="abc123abc123abc123\n",
    )
    assert result.exit_code == 0, result.output
    profile = config.load().profiles["sbx"]
    assert (profile.api_key, profile.base_url) == ("abc123abc123abc123", "http://127.0.0.1:8765/v1")


def test_show_masks_keys_in_table_and_json() -> None:
    """config show never prints a key, only its mask, and says where the key comes from."""
    runner = CliRunner()
    runner.invoke(cli, ["config", "set-key", "--no-check"], input=KEY + "\n")
    shown = runner.invoke(cli, ["config", "show"])
    assert shown.exit_code == 0 and KEY not in shown.output
    assert config.mask_key(KEY) in shown.stdout
    doc = runner.invoke(cli, ["config", "show", "--json"])
    assert KEY not in doc.output
    import json

    data = json.loads(doc.stdout)
    assert data["profiles"]["default"]["api_key"] == config.mask_key(KEY)
    assert data["resolved"]["source"] == "profile"


def test_use_switches_profiles_and_rejects_unknown_ones() -> None:
    """config use NAME activates a profile; an unknown one is exit 2."""
    runner = CliRunner()
    runner.invoke(
        cli, ["config", "set-key", "--profile", "a", "--no-check"], input="aaaaaaaaaaaaaaaa\n"
    )
    runner.invoke(
        cli, ["config", "set-key", "--profile", "b", "--no-check"], input="bbbbbbbbbbbbbbbb\n"
    )
    assert runner.invoke(cli, ["config", "use", "b"]).exit_code == 0
    assert config.load().active == "b"
    bad = runner.invoke(cli, ["config", "use", "zzz"])
    assert bad.exit_code == 2
    assert bad.stderr.strip().startswith("clore: error: no profile named 'zzz'")


def test_empty_key_is_refused() -> None:
    """A blank or multi-word key is bad input."""
    result = CliRunner().invoke(cli, ["config", "set-key"], input="two words\n")
    assert result.exit_code == 2
    assert "one word" in result.stderr


def test_missing_key_for_authenticated_commands_is_exit_3() -> None:
    """wallets, orders, spend without any key: exit 3 and a hint, nothing on stdout."""
    runner = CliRunner()
    for args in (["wallets"], ["orders"], ["spend"], ["order", "1"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 3, args
        assert "clore config set-key" in result.stderr and result.stdout == ""
