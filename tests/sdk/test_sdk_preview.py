"""clore.preview_create_order: exactly the body create_order sends, checked, sent nowhere."""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import msgspec
import pytest

import clore
from clore import AsyncClore, Clore, CreateOrderRequest, ParameterError, preview_create_order
from clore.sandbox import BASE_URL, Sandbox

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@box"


class Recording(httpx.BaseTransport):
    """Passes requests to the sandbox and keeps the create_order bodies."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/create_order"):
            self.bodies.append(request.read())
        return self.inner.handle_request(request)


@pytest.mark.parametrize(
    ("pick", "kwargs"),
    [
        (0, {}),
        (
            1,
            {
                "currency": "BTC",
                "ports": {22: "TCP", "8888": "http"},
                "env": {"A": "1"},
                "ssh_password": "abc123",
                "jupyter_token": "tok",
                "command": "echo hi",
                "autossh_entrypoint": True,
            },
        ),
        (2, {"order_type": "spot", "spotprice": 1.0, "ports": ["22/tcp"], "ssh_key": KEY}),
    ],
)
def test_the_preview_is_the_body_create_order_sends(
    sandbox: Sandbox, pick: int, kwargs: dict[str, Any]
) -> None:
    """The JSON create_order sends is the preview's, byte for byte (a string id too)."""
    recording = Recording(sandbox.transport())
    with Clore(
        sandbox.demo_key, base_url=BASE_URL, transport=recording, clock=sandbox.clock
    ) as api:
        free = [s.id for s in api.marketplace() if not s.rented and s.accepts("bitcoin")]
        server_id: Any = str(free[pick]) if pick == 1 else free[pick]
        api.create_order(server_id, "  cloreai/ubuntu22.04-cuda12 ", **kwargs)
    preview = preview_create_order(server_id, "  cloreai/ubuntu22.04-cuda12 ", **kwargs)
    assert recording.bodies == [msgspec.json.encode(preview)]


def test_the_preview_is_normalised() -> None:
    """Aliases become the API's keys, ports the {"22": "tcp"} form, the image is trimmed."""
    preview = preview_create_order(
        "7", " img ", order_type="on_demand", currency="clore", ports=["22:tcp"]
    )
    expected = CreateOrderRequest(
        currency="CLORE-Blockchain",
        image="img",
        renting_server=7,
        type="on-demand",
        ports={"22": "tcp"},
    )
    assert (preview, msgspec.to_builtins(preview)) == (
        expected,
        {"currency": "CLORE-Blockchain", "image": "img", "renting_server": 7, "type": "on-demand"}
        | {"ports": {"22": "tcp"}},
    )


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"order_type": "spot"}, "spotprice"),
        ({"currency": "doge"}, "currency"),
        ({"ssh_password": "a b"}, "ssh_password"),
        ({"ports": {"80": "http", "81": "http"}}, "ports"),
    ],
)
def test_bad_arguments_raise_the_same_parameter_error_as_create_order(
    clore_client: Clore, sandbox: Sandbox, kwargs: dict[str, Any], param: str
) -> None:
    """The preview refuses what create_order refuses, with the same message."""
    with pytest.raises(ParameterError) as previewed:
        preview_create_order(1, "img", **kwargs)
    with pytest.raises(ParameterError) as created:
        clore_client.create_order(1, "img", **kwargs)
    assert (previewed.value.param, str(previewed.value)) == (param, str(created.value))
    assert clore_client.my_orders() == []


@pytest.mark.parametrize("client", [Clore, AsyncClore])
def test_create_order_takes_exactly_the_previews_parameters(client: type[Any]) -> None:
    """Clore.create_order and AsyncClore.create_order have the preview's parameters, in
    order, with its defaults and annotations, so the two cannot drift apart."""
    method = list(inspect.signature(client.create_order).parameters.values())[1:]
    preview = list(inspect.signature(preview_create_order).parameters.values())
    assert method == preview


def test_the_names_are_public() -> None:
    """preview_create_order and CreateOrderRequest are exported from clore."""
    assert {"preview_create_order", "CreateOrderRequest"} <= set(clore.__all__)
