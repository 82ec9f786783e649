"""Explain mode (``Clore(explain=...)``): every request reported, redacted; reads sent,
nothing that changes anything sent (``clore.Explained``), on the sandbox's wire."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import clore
from _stub.wire import Wire, free_server, mine, rent
from clore import AsyncClore, Clore, Explained, ExplainedRequest
from clore._clock import ManualClock
from clore._facts import ENDPOINTS
from clore.sandbox import BASE_URL, Sandbox

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@box"


def explaining(sandbox: Sandbox, wire: Wire, clock: ManualClock) -> tuple[Clore, list[Any]]:
    """A demo-user client through ``wire`` in explain mode, and what it reported."""
    seen: list[ExplainedRequest] = []
    client = Clore(
        sandbox.demo_key,
        base_url=BASE_URL,
        transport=wire.transport(),
        clock=clock,
        explain=seen.append,
    )
    return client, seen


def as_text(seen: list[ExplainedRequest]) -> str:
    """Everything the callback was handed, as one would print it."""
    return json.dumps([r.to_dict() for r in seen]) + "\n".join(map(str, seen))


def test_create_order_is_reported_redacted_and_not_sent(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """create_order under explain sends only its my_orders snapshot, hands over the body
    with the password, token and secret-named env values as ***, the key shortened and
    the API key nowhere, raises Explained, and no order exists afterwards."""
    client, seen = explaining(sandbox, wire, clock)
    server = free_server(sandbox)
    before = mine(sandbox)
    with client, pytest.raises(Explained) as raised:
        client.create_order(
            server,
            "ubuntu:22.04",
            currency="btc",
            ssh_password="Hunter2pass",
            ssh_key=SSH_KEY,
            jupyter_token="jtok12345",
            env={"HF_TOKEN": "hf_secret_value", "MODE": "train", "NOTE": sandbox.demo_key},
            ports={22: "tcp"},
        )
    assert wire.sent("create_order") == []
    assert [s.endpoint for s in wire.sent()] == ["my_orders"]
    assert before == mine(sandbox)
    assert [(r.endpoint, r.sent) for r in seen] == [("my_orders", True), ("create_order", False)]
    held = raised.value.request
    assert seen[-1] == held
    assert held.method == "POST"
    assert held.mutates
    body = held.body
    assert (server, "bitcoin", "on-demand") == (
        body["renting_server"],
        body["currency"],
        body["type"],
    )
    assert (body["ssh_password"], body["jupyter_token"]) == ("***", "***")
    assert body["env"] == {"HF_TOKEN": "***", "MODE": "train", "NOTE": "***"}
    assert body["ssh_key"] == "ssh-ed25519 AAAAC3Nz…h2l9GKJl me@box"
    text = as_text(seen)
    for secret in ("Hunter2pass", "jtok12345", "hf_secret_value", sandbox.demo_key):
        assert secret not in text
    assert "nothing was changed" in str(raised.value)


def test_cancel_order_under_explain_leaves_the_order_running(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """cancel_order under explain sends nothing and the order stays live."""
    order_id = rent(sandbox)
    client, seen = explaining(sandbox, wire, clock)
    with client, pytest.raises(Explained):
        client.cancel_order(order_id, issue="the GPU is slow")
    assert wire.sent() == []
    live = {o.id: o for o in mine(sandbox)}[order_id]
    assert not live.ended
    assert [{"id": order_id, "issue": "the GPU is slow"}] == [r.body for r in seen]


def test_set_spot_price_under_explain_leaves_the_bid(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """set_spot_price under explain sends nothing; the bid is what it was."""
    order_id = rent(sandbox, spot=True)
    bid = {o.id: o for o in mine(sandbox)}[order_id].price
    client, seen = explaining(sandbox, wire, clock)
    with client, pytest.raises(Explained):
        client.set_spot_price(order_id, bid * 2)
    assert wire.sent("set_spot_price") == []
    assert bid == {o.id: o for o in mine(sandbox)}[order_id].price
    assert {"order_id": order_id, "desired_price": bid * 2} == seen[-1].body


def test_set_server_settings_under_explain_changes_nothing(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """set_server_settings under explain reads (my_servers, server_config) as usual and
    sends no settings: the configuration afterwards is the one before."""
    client, seen = explaining(sandbox, wire, clock)
    with client:
        name = client.my_servers()[0].name
        config = client.server_config(name)
        with pytest.raises(Explained):
            client.set_server_settings(name, availability=False, mrl=config.mrl + 1)
        client.explain = None
        assert config == client.server_config(name)
    assert wire.sent("set_server_settings") == []
    assert [r.endpoint for r in seen] == ["my_servers", "server_config", "set_server_settings"]
    assert [r.sent for r in seen] == [True, True, False]
    assert {"server_name": name} == seen[1].body
    assert {"name": name, "availability": False, "mrl": config.mrl + 1} == seen[2].body


def test_reads_are_sent_reported_and_answered_as_usual(
    sandbox: Sandbox, wire: Wire, clock: ManualClock, client: Clore
) -> None:
    """Under explain a read is sent once, reported with its URL and query, and answers as
    it does without explain."""
    explained, seen = explaining(sandbox, wire, clock)
    order_id = rent(sandbox)
    with explained:
        orders = explained.my_orders(include_completed=True)
    assert [s.params for s in wire.sent("my_orders")] == [{"return_completed": "true"}]
    clock.advance(1.0)  # the key's 1 s interval: the second client is paced apart
    assert [o.id for o in client.my_orders(include_completed=True)] == [o.id for o in orders]
    assert [f"{BASE_URL}/my_orders?return_completed=true"] == [r.url for r in seen]
    assert (seen[0].sent, seen[0].mutates, seen[0].auth, seen[0].body) == (True, False, True, None)
    assert order_id in {o.id for o in orders}


def test_the_client_works_normally_after_an_explained_call(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """An explained create_order leaves no hold behind: with explain turned off the same
    client rents the server (exactly one order)."""
    client, _ = explaining(sandbox, wire, clock)
    server = free_server(sandbox)
    with client:
        with pytest.raises(Explained):
            client.create_order(server, "ubuntu:22.04")
        client.explain = None
        order = client.create_order(server, "ubuntu:22.04")
    assert server == order.si
    assert len(wire.sent("create_order")) == 1


def test_explained_is_not_an_api_error() -> None:
    """Explained is no CloreError: loops that retry API errors do not swallow it."""
    assert not issubclass(Explained, clore.CloreError)
    assert issubclass(Explained, Exception)


async def test_async_client_explains_the_same_way(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """AsyncClore under explain: the same reports, create_order not sent."""
    seen: list[ExplainedRequest] = []
    server = free_server(sandbox)
    async with AsyncClore(
        sandbox.demo_key,
        base_url=BASE_URL,
        transport=wire.async_transport(),
        clock=clock,
        explain=seen.append,
    ) as client:
        with pytest.raises(Explained):
            await client.create_order(server, "ubuntu:22.04", ssh_password="abc123XYZ")
    assert wire.sent("create_order") == []
    assert [r.endpoint for r in seen] == ["my_orders", "create_order"]
    assert seen[-1].body["ssh_password"] == "***"


@pytest.mark.parametrize(
    ("call", "endpoint"),
    [
        (lambda c: c.create_order(1, "img"), "create_order"),
        (lambda c: c.cancel_order(7), "cancel_order"),
        (lambda c: c.set_spot_price(7, 0.5), "set_spot_price"),
        (lambda c: c.set_server_settings("srv", mrl=24), "set_server_settings"),
    ],
)
def test_every_mutating_endpoint_is_held_back(
    sandbox: Sandbox,
    wire: Wire,
    clock: ManualClock,
    call: Callable[[Clore], object],
    endpoint: str,
) -> None:
    """Each endpoint the facts mark as changing something is reported and not sent."""
    client, seen = explaining(sandbox, wire, clock)
    with client, pytest.raises(Explained) as raised:
        call(client)
    assert endpoint == raised.value.request.endpoint
    assert wire.sent(endpoint) == []
    assert [endpoint] == [r.endpoint for r in seen if not r.sent]
    mutating = {e.name for e in ENDPOINTS.values() if e.mutates}
    assert {"create_order", "cancel_order", "set_spot_price", "set_server_settings"} == mutating


def test_redaction_of_dockerhub_auth_and_odd_keys() -> None:
    """dockerhub_auth is *** whatever its shape; text that is not a key is cut short."""
    from clore._explain import redact_body, shorten_ssh_key

    body = {"dockerhub_auth": {"username": "me", "password": "pw"}, "ssh_key": "x" * 40}
    assert redact_body(body) == {"dockerhub_auth": "***", "ssh_key": "x" * 16 + "… (40 characters)"}
    assert shorten_ssh_key("short") == "short"


def test_the_vendor_compatible_client_explains_too(
    sandbox: Sandbox, wire: Wire, clock: ManualClock
) -> None:
    """CloreClient(explain=...) passes it to Clore: a read answers, cancel_order raises
    Explained (not CloreAPIError) and the order stays live."""
    from clore import CloreAPIError, CloreClient

    order_id = rent(sandbox)
    seen: list[ExplainedRequest] = []
    guide = CloreClient(
        sandbox.demo_key,
        base_url=BASE_URL,
        transport=wire.transport(),
        clock=clock,
        explain=seen.append,
    )
    assert any(o["id"] == order_id for o in guide.get_orders())
    with pytest.raises(Explained) as raised:
        guide.cancel_order(order_id)
    assert not isinstance(raised.value, CloreAPIError)
    assert wire.sent("cancel_order") == []
    assert [(r.endpoint, r.sent) for r in seen] == [("my_orders", True), ("cancel_order", False)]
    assert not {o.id: o for o in mine(sandbox)}[order_id].ended
