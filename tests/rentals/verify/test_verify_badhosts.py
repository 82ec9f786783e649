"""The bad-host list: add, list, forget, ``is_bad`` (server, owner, owner strikes), kept in
the data directory as a 0600 JSON file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest
from verify_support import ONE_GPU, snapshot_server

import clore
from clore.rentals.verify import (
    BadHosts,
    BadHostsFileError,
    add_bad_host,
    bad_hosts_path,
    forget_bad_host,
    is_bad,
    list_bad_hosts,
)


def test_the_list_lives_in_the_data_directory_as_a_private_file() -> None:
    """Adding creates ``bad-hosts.json`` under ``CLORE_DATA_DIR`` with mode 0600."""
    add_bad_host(25756, reason="gpu_count: 1 fewer than listed", owner=9177, now=1000.0)
    path = bad_hosts_path()
    assert path == Path(os.environ["CLORE_DATA_DIR"]) / "bad-hosts.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["servers"] == [
        {
            "id": 25756,
            "reason": "gpu_count: 1 fewer than listed",
            "added_at": 1000.0,
            "owner": 9177,
            "order_id": None,
            "checks": [],
        }
    ]


def test_add_list_forget_round_trip() -> None:
    """What is added is listed with its reason and time, and forgetting removes it."""
    add_bad_host(1, reason="first", owner=10, order_id=5, checks=["gpu_model"], now=1.0)
    add_bad_host(2, reason="second", now=2.0)
    listed = [(kind, e.id, e.reason, e.added_at) for kind, e in list_bad_hosts().entries()]
    assert listed == [("server", 1, "first", 1.0), ("server", 2, "second", 2.0)]
    removed = forget_bad_host(server_id=1)
    assert [e.id for e in removed] == [1]
    assert [e.id for _, e in list_bad_hosts().entries()] == [2]
    assert forget_bad_host(server_id=99) == []
    assert [e.id for e in forget_bad_host(everything=True)] == [2]
    assert list_bad_hosts().entries() == []


def test_adding_a_listed_server_again_keeps_the_newest_reason() -> None:
    """One entry per server; the last verification's reason wins."""
    add_bad_host(7, reason="old", now=1.0)
    add_bad_host(7, reason="new", now=2.0)
    assert [(e.id, e.reason) for _, e in list_bad_hosts().entries()] == [(7, "new")]


def test_is_bad_answers_for_a_server_an_order_or_an_id() -> None:
    """A listed server is bad as a marketplace Server, as an id, and not otherwise."""
    record = snapshot_server(ONE_GPU)
    server = msgspec.json.decode(json.dumps(record), type=clore.Server)
    assert is_bad(server) is None
    add_bad_host(ONE_GPU, reason="power_limit: GPU 0: 300 W of 450 W listed (67%)")
    found = is_bad(server)
    assert found is not None
    reason = "power_limit: GPU 0: 300 W of 450 W listed (67%)"
    assert (found.kind, found.reason) == ("server", reason)
    assert is_bad(ONE_GPU) is not None
    assert is_bad(ONE_GPU + 1) is None


def test_an_owner_is_bad_when_listed_or_with_two_bad_servers() -> None:
    """Two servers of one owner on the list make all their servers bad; so does the
    owner's own entry; forgetting the owner clears both."""
    hosts = BadHosts()
    hosts.add_server(1, reason="a", owner=42, now=1.0)
    assert hosts.is_bad(3, owner=42) is None
    hosts.add_server(2, reason="b", owner=42, now=2.0)
    strike = hosts.is_bad(3, owner=42)
    assert strike is not None
    assert (strike.kind, strike.reason) == (
        "owner_strikes",
        "owner 42 has 2 servers on the bad-host list",
    )
    hosts.add_owner(77, reason="sold fake 4090s", now=3.0)
    owner = hosts.is_bad(5, owner=77)
    assert owner is not None
    assert (owner.kind, owner.reason) == ("owner", "owner 77: sold fake 4090s")
    gone = hosts.forget(owner=42)
    assert sorted(e.id for e in gone) == [1, 2]
    assert hosts.is_bad(3, owner=42) is None


def test_a_reason_is_kept_on_one_line_and_bounded() -> None:
    """Newlines fold into spaces and a long reason is cut (the file stays readable)."""
    entry = BadHosts().add_server(1, reason="line one\nline two " + "x" * 900)
    assert entry.reason.startswith("line one line two ")
    assert len(entry.reason) == 500 and entry.reason.endswith("...")


def test_a_damaged_file_gives_a_one_line_error(tmp_path: Path) -> None:
    """Garbage in the file raises BadHostsFileError (a ConfigError) naming the file."""
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(BadHostsFileError) as caught:
        BadHosts(path).load()
    assert isinstance(caught.value, clore.ConfigError)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    path.write_text('{"v": 2, "servers": [], "owners": []}')
    with pytest.raises(BadHostsFileError, match="has version 2"):
        BadHosts(path).load()


def test_forget_needs_something_to_forget() -> None:
    """Forgetting with no server, owner or ``everything`` is refused."""
    with pytest.raises(ValueError, match="name a server, an owner, or everything"):
        forget_bad_host()
