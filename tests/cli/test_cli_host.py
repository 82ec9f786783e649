"""clore host list | config | set: the demo user hosts a few sandbox servers."""

from __future__ import annotations

from cli_helpers import Cli


def _first_name(run: Cli) -> str:
    name: str = run.json("host", "list")["servers"][0]["name"]
    return name


def test_host_list_shows_hosted_servers(run: Cli) -> None:
    """The table names each server with prices per day and visibility."""
    result = run("host", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[:2] == ["Name", "ID"]
    assert "/day" in result.stdout.splitlines()[0]
    assert run.json("host", "list")["servers"]


def test_host_config_shows_the_configuration(run: Cli) -> None:
    """host config NAME: visibility, prices per day, max rental in hours."""
    name = _first_name(run)
    result = run("host", "config", name)
    assert result.exit_code == 0, result.output
    assert f"Server {name}" in result.stdout and "per day" in result.stdout
    assert run.json("host", "config", name)["config"]["name"] == name


def test_host_set_changes_prices_mrl_and_visibility(run: Cli) -> None:
    """host set NAME --price 0.0002btc --mrl 48 --hidden changes the configuration."""
    name = _first_name(run)
    doc = run.json("host", "set", name, "--price", "0.0002btc", "--mrl", "48", "--hidden")
    assert doc["updated"] == {
        "name": name, "availability": False, "mrl": 48,
        "per_currency": {"bitcoin": {"on_demand": 0.0002}},
    }  # fmt: skip
    config = run.json("host", "config", name)["config"]
    assert config["pricing"]["bitcoin"] == 0.0002
    assert config["mrl"] == 48 and config["visibility"] == "hidden"


def test_host_set_refuses_mixed_or_empty_changes(run: Cli) -> None:
    """Suffixed and bare prices together, or no change at all, are usage errors."""
    name = _first_name(run)
    mixed = run("host", "set", name, "--price", "0.0002btc", "--spot-price", "0.0001")
    empty = run("host", "set", name)
    assert (mixed.exit_code, empty.exit_code) == (2, 2)
    assert "currency suffix" in mixed.stderr and "nothing to change" in empty.stderr


def test_unknown_hosted_server_is_not_found(run: Cli) -> None:
    """A name that is not yours is exit 4 on one line naming your servers (config and set)."""
    names = ", ".join(s.name or "" for s in run.client.my_servers())
    for args in (["config", "no-such-server"], ["set", "no-such-server", "--mrl", "5"]):
        result = run("host", *args)
        assert result.exit_code == 4
        assert result.stderr.strip() == (
            f"clore: error: you host no server named 'no-such-server' (yours: {names})"
        )


def test_host_set_says_what_changed_in_words(run: Cli) -> None:
    """The human summary names each change with its unit, not Python reprs."""
    name = _first_name(run)
    result = run("host", "set", name, "--price", "0.0002btc", "--mrl", "48", "--visible")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"Updated server {name}: visible on the marketplace; maximum rental 48 h; "
        "on-demand 0.0002000 BTC/day"
    )
