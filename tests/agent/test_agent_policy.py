"""The person's guards come from config_dir()/agent.toml (or CLORE_AGENT_CONFIG) and
CLORE_AGENT_* variables, which win; a [profiles.NAME] table overrides for that profile;
anything unknown or malformed is a one-line ConfigError naming its source."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clore import ConfigError, config
from clore.agent import AgentPolicy, policy_path

FILE = """
max_price_per_hour_usd = 1.5
max_spend_per_day_usd = 20
max_spend_per_order_usd = 6
max_live_orders = 2
allowed_gpus = ["RTX 4090", "a100 80gb"]
order_max_time = "90m"
cancel_foreign = true
quote_ttl = 60
price_tolerance = 0.05
currency = "usd"

[profiles.sandbox]
max_spend_per_day_usd = 100
read_only = true
"""


def write(text: str) -> Path:
    path = Path(os.environ["CLORE_CONFIG_DIR"]) / "agent.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_no_file_no_variables_is_the_defaults() -> None:
    """No caps, a 4 h order maximum, not read-only, only the agent's orders cancelled."""
    policy = AgentPolicy.load(env={})
    assert AgentPolicy() == policy
    assert (policy.order_max_time, policy.read_only, policy.cancel_foreign) == (14400, False, False)
    assert policy.max_spend_per_day_usd is None


def test_the_file_sets_every_guard() -> None:
    """Each key of agent.toml lands in the policy, durations and currencies read."""
    write(FILE)
    policy = AgentPolicy.load(env={})
    assert policy == AgentPolicy(
        max_price_per_hour_usd=1.5,
        max_spend_per_day_usd=20.0,
        max_spend_per_order_usd=6.0,
        max_live_orders=2,
        allowed_gpus=("RTX 4090", "a100 80gb"),
        order_max_time=5400.0,
        cancel_foreign=True,
        quote_ttl=60.0,
        price_tolerance=0.05,
        currency="USD-Blockchain",
    )


def test_a_profile_table_overrides_for_its_profile() -> None:
    """CLORE_PROFILE, or config.toml's active profile, picks the table."""
    write(FILE)
    named = AgentPolicy.load(env={"CLORE_PROFILE": "sandbox"})
    assert (named.max_spend_per_day_usd, named.read_only, named.max_live_orders) == (100.0, True, 2)
    config.set_profile("sandbox", api_key="k" * 20)
    assert AgentPolicy.load(env={}).read_only is True
    assert AgentPolicy.load(env={}, profile="default").read_only is False


def test_variables_win_and_none_lifts_a_cap() -> None:
    """CLORE_AGENT_* over the file; 'none' removes a cap the file set."""
    write(FILE)
    env = {
        "CLORE_AGENT_MAX_SPEND_PER_DAY_USD": "5.5",
        "CLORE_AGENT_MAX_LIVE_ORDERS": "none",
        "CLORE_AGENT_ALLOWED_GPUS": "3090, 4090",
        "CLORE_AGENT_READ_ONLY": "yes",
        "CLORE_AGENT_ORDER_MAX_TIME": "7200",
    }
    policy = AgentPolicy.load(env=env)
    assert policy.max_spend_per_day_usd == 5.5 and policy.max_live_orders is None
    assert policy.allowed_gpus == ("3090", "4090")
    assert (policy.read_only, policy.order_max_time) == (True, 7200.0)


def test_another_file_by_variable(tmp_path: Path) -> None:
    """CLORE_AGENT_CONFIG names the file."""
    other = tmp_path / "guards.toml"
    other.write_text("max_live_orders = 1\n")
    env = {"CLORE_AGENT_CONFIG": str(other)}
    assert other == policy_path(env)
    assert AgentPolicy.load(env=env).max_live_orders == 1


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("max_spend_per_dya_usd = 5\n", {}, "unknown setting 'max_spend_per_dya_usd'"),
        ("max_live_orders = -1\n", {}, "max_live_orders: expected a whole number"),
        ("max_live_orders = true\n", {}, "max_live_orders: expected a whole number"),
        ('allowed_gpus = ["RTX"]\n', {}, "names no GPU model"),
        ('allowed_gpus = "4090"\n', {}, "expected a list of GPU models"),
        ('order_max_time = "forever"\n', {}, "order_max_time: bad duration"),
        ("price_tolerance = 2\n", {}, "price_tolerance: expected a fraction in [0, 1)"),
        ("read_only = 1\n", {}, "read_only: expected true or false"),
        ('currency = "eur"\n', {}, "unknown currency 'eur'"),
        ("max_spend_per_day_usd = [\n", {}, "not valid TOML"),
        ("", {"CLORE_AGENT_MAX_PRICE_PER_HOUR_USD": "cheap"}, "CLORE_AGENT_MAX_PRICE_PER_HOUR_USD"),
        ("", {"CLORE_AGENT_READ_ONLY": "maybe"}, "CLORE_AGENT_READ_ONLY: expected 1/0"),
        ("", {"CLORE_AGENT_MAX_LIVE_ORDERS": "2.5"}, "expected a whole number"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_source(
    text: str, env: dict[str, str], message: str
) -> None:
    """A mistyped guard never means no guard."""
    path = write(text)
    with pytest.raises(ConfigError) as raised:
        AgentPolicy.load(env=env)
    shown = str(raised.value)
    assert message in shown and "\n" not in shown
    assert (str(path) in shown) or any(name in shown for name in env)
