"""``clore.rentals``: ports and SSH keys for reaching a rental; spot bids winning or not;
cancelling several orders with every check first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clore import (
    Clore,
    Order,
    OrderExpiredError,
    OrderNotFoundError,
    ParameterError,
    RateLimitError,
)
from clore.rentals import cancel_orders, default_public_key, parse_ports, spot_activity
from clore.sandbox import Sandbox

IMAGE = "cloreai/ubuntu22.04"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx me@host"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("22:tcp,8888:http", {"22": "tcp", "8888": "http"}),
        (" 22:TCP , ", {"22": "tcp"}),
        (["22/tcp"], {"22": "tcp"}),
        ({22: "tcp"}, {"22": "tcp"}),
        ("", None),
        ([], None),
        (None, None),
    ],
)
def test_parse_ports_takes_every_form_of_create_order(given: Any, expected: Any) -> None:
    """A comma list, a list of PORT:PROTO (or PORT/PROTO), a mapping; empty is None."""
    assert parse_ports(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("22:tcp,80:http,8888:http", "at most one http port"),
        ("22:ftp", "protocol must be one of"),
        ("0:tcp", "out of range"),
        ("22", "expected 'port:protocol'"),
    ],
)
def test_parse_ports_refuses_bad_ports_naming_the_parameter(given: str, message: str) -> None:
    """A bad port, protocol or a second http port is ParameterError('ports', ...)."""
    with pytest.raises(ParameterError, match=message) as caught:
        parse_ports(given)
    assert caught.value.param == "ports"


def test_default_public_key_prefers_ed25519_and_is_none_without_one(tmp_path: Path) -> None:
    """~/.ssh/id_ed25519.pub before id_rsa.pub; no key file: None."""
    assert default_public_key(tmp_path) is None
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    (ssh / "id_rsa.pub").write_text("ssh-rsa AAAAB3NzaC1yc2E me@host\n")
    assert default_public_key(tmp_path).path.name == "id_rsa.pub"  # type: ignore[union-attr]
    (ssh / "id_ed25519.pub").write_text(KEY + "\n")
    found = default_public_key(tmp_path)
    assert found is not None and (found.path.name, found.text) == ("id_ed25519.pub", KEY)


def test_a_default_key_file_that_is_not_a_public_key_is_refused(tmp_path: Path) -> None:
    """A private key saved as id_ed25519.pub is refused, naming the parameter, not read."""
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    (ssh / "id_ed25519.pub").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n")
    with pytest.raises(ParameterError, match="private key") as caught:
        default_public_key(tmp_path, param="--ssh-key")
    assert caught.value.param == "--ssh-key" and "b3Blbn" not in str(caught.value)


def _rent(client: Clore, count: int) -> list[Order]:
    free = [s for s in client.marketplace() if not s.rented and s.accepts("bitcoin")]
    return [client.create_order(s.id, IMAGE) for s in free[:count]]


def test_cancel_orders_cancels_each_once_and_returns_the_ended_records(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """Each order (a repeated id once) is cancelled; the result is the ended records."""
    first, second = _rent(clore_client, 2)
    done: list[int] = []
    final = cancel_orders(clore_client, [first.id, second.id, first.id], cancelled=done)
    assert (done, sorted(final), [o.expired for o in final.values()]) == (
        [first.id, second.id],
        sorted([first.id, second.id]),
        [True, True],
    )


@pytest.mark.parametrize("problem", ["unknown", "ended", "issue"])
def test_cancel_orders_checks_every_order_before_cancelling_any(
    problem: str, sandbox: Sandbox, clore_client: Clore
) -> None:
    """An unknown id, an ended order or a too long issue among them: none is cancelled."""
    running, other = _rent(clore_client, 2)
    ids = [running.id]
    issue = None
    expected: type[Exception] = ParameterError
    if problem == "unknown":
        ids.append(10**9)
        expected = OrderNotFoundError
    elif problem == "ended":
        clore_client.cancel_order(other.id)
        ids.append(other.id)
        expected = OrderExpiredError
    else:
        issue = "x" * 2049
    with pytest.raises(expected):
        cancel_orders(clore_client, ids, issue)
    assert clore_client.get_order(running.id).expired is False


def test_a_cancel_failing_midway_leaves_the_done_ones_in_cancelled(
    sandbox: Sandbox, clore_client: Clore
) -> None:
    """The second cancel is refused: the error propagates and ``cancelled`` names the first."""
    first, second = _rent(clore_client, 2)
    calls: list[int] = []

    class SecondFails:
        def my_orders(self, include_completed: bool = False) -> list[Order]:
            return clore_client.my_orders(include_completed=include_completed)

        def cancel_order(self, order_id: int, issue: str | None = None) -> None:
            calls.append(order_id)
            if len(calls) == 2:
                raise RateLimitError(code=5)
            clore_client.cancel_order(order_id, issue)

    done: list[int] = []
    with pytest.raises(RateLimitError):
        cancel_orders(SecondFails(), [first.id, second.id], cancelled=done)
    assert done == [first.id]


def test_spot_activity_says_which_bid_wins(sandbox: Sandbox, clore_client: Clore) -> None:
    """Of two bids on one server the higher is active, the lower is not."""
    server = next(
        s
        for s in clore_client.marketplace()
        if not s.rented and s.price_per_day("bitcoin", spot=True) is not None
    )
    low_bid = (server.price_per_day("bitcoin", spot=True) or 0) * 2
    key, _ = sandbox.create_user("rival", {"bitcoin": 1.0})
    with sandbox.client(api_key=key) as rival:
        low = clore_client.create_order(server.id, IMAGE, "spot", spotprice=low_bid)
        high = rival.create_order(server.id, IMAGE, "spot", spotprice=low_bid * 2)
    active = spot_activity(clore_client, [low])
    assert (active[low.id], active[high.id]) == (False, True)
    assert low.state_at(clore_client.server_time(), spot_active=active[low.id]) == "outbid"
