"""What a rental asks for: ``RentArgs`` (the arguments of ``quote_rental`` and
``rent_server``, and their JSON schema) and ``normalized`` (the form a quote binds:
defaults filled in, one spelling for each value, so ``btc`` and ``bitcoin`` or ports in
another order are the same arguments)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from clore.agent.spec import ToolError
from clore.agent.views import num, sig

if TYPE_CHECKING:
    from clore.agent.policy import AgentPolicy

__all__ = ["DEFAULT_IMAGE", "DEFAULT_PORTS", "RentArgs", "argument_secrets", "normalized"]

#: The vendor's Ubuntu 24.04 image with Jupyter and sshd (the CLI's default too).
DEFAULT_IMAGE: Final = "cloreai/jupyter:ubuntu24.04-v2"
DEFAULT_PORTS: Final = ("22:tcp",)

Hours = Annotated[
    float,
    Meta(
        gt=0,
        description="Maximum running time in hours (at most the person's order_max_time, "
        "the default).",
    ),
]


class RentArgs(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What to rent (``quote_rental``'s arguments; ``rent_server`` repeats them)."""

    server_id: Annotated[int, Meta(ge=1, description="The server's id (from search_market).")]
    order_type: Annotated[
        Literal["on-demand", "spot"],
        Meta(description="on-demand (fixed price, cannot be taken away) or spot (a bid)."),
    ] = "on-demand"
    bid: (
        Annotated[
            str,
            Meta(
                max_length=40,
                description="Spot only: the bid per day or hour, e.g. 0.00004btc, 1.2usd, "
                "0.05usd/h (default: the server's spot minimum).",
            ),
        ]
        | UnsetType
    ) = UNSET
    currency: (
        Annotated[
            str,
            Meta(max_length=20, description="Pay with btc, clore or usd (default: the person's)."),
        ]
        | UnsetType
    ) = UNSET
    image: (
        Annotated[
            str,
            Meta(
                min_length=1, max_length=256, description=f"Docker image (default {DEFAULT_IMAGE})."
            ),
        ]
        | UnsetType
    ) = UNSET
    ports: (
        Annotated[
            list[str],
            Meta(
                max_length=16,
                description='Ports to expose as "PORT:tcp" or "PORT:http" (one http at most); '
                'default ["22:tcp"].',
            ),
        ]
        | UnsetType
    ) = UNSET
    env: (
        Annotated[dict[str, str], Meta(description="Environment variables for the container.")]
        | UnsetType
    ) = UNSET
    command: (
        Annotated[str, Meta(max_length=8192, description="Startup script run in the container.")]
        | UnsetType
    ) = UNSET
    ssh_key: (
        Annotated[
            str,
            Meta(
                max_length=3072,
                description="An OpenSSH public key to log in with (default: the person's own "
                "public key; a generated password is always set too).",
            ),
        ]
        | UnsetType
    ) = UNSET
    jupyter_token: (
        Annotated[
            str,
            Meta(
                max_length=32,
                description="Jupyter token when port 8888 is http (default: generated, not shown).",
            ),
        ]
        | UnsetType
    ) = UNSET
    max_hours: Hours | UnsetType = UNSET


def argument_secrets(arguments: dict[str, Any]) -> list[str]:
    """The secrets among normalised arguments: the Jupyter token, env values whose name
    looks secret (they must never come back in a result)."""
    from clore.agent.audit import looks_secret

    found = [arguments["jupyter_token"]] if arguments.get("jupyter_token") else []
    for name, value in (arguments.get("env") or {}).items():
        if looks_secret(name) and value:
            found.append(value)
    return found


def _given(value: Any) -> Any:
    return None if value is UNSET else value


def normalized(args: RentArgs, policy: AgentPolicy) -> dict[str, Any]:
    """The arguments a quote binds, defaults filled in and spelled one way (``btc`` and
    ``bitcoin`` are one currency, ports are sorted); ``ToolError`` when malformed."""
    from clore import ParameterError
    from clore.market import parse_currency
    from clore.rentals import looks_private, parse_ports, public_key_problem

    try:
        currency = parse_currency(args.currency) if args.currency is not UNSET else policy.currency
    except ValueError as exc:
        raise ToolError(str(exc), error="bad_arguments") from None
    if args.order_type != "spot" and args.bid is not UNSET:
        raise ToolError(
            "bid is for spot orders only: set order_type to spot", error="bad_arguments"
        )
    try:
        ports = parse_ports(list(args.ports) if args.ports is not UNSET else list(DEFAULT_PORTS))
    except ParameterError as exc:
        raise ToolError(f"ports: {exc}", error="bad_arguments") from None
    key = None
    if args.ssh_key is not UNSET:
        key = " ".join(args.ssh_key.split())
        if looks_private(key):
            raise ToolError("ssh_key is a private key: give its public half", error="bad_arguments")
        problem = public_key_problem(key)
        if problem is not None:
            raise ToolError(f"ssh_key: {problem}", error="bad_arguments")
    if args.max_hours is not UNSET:
        seconds = float(args.max_hours) * 3600.0
        if seconds > policy.order_max_time * (1 + 1e-9):
            raise ToolError(
                f"max_hours {num(args.max_hours)} is over the person's order_max_time of "
                f"{num(policy.order_max_time / 3600)} h: give at most that, or leave it out",
                error="refused",
                refused=[
                    {
                        "cap": "order_max_time",
                        "limit_hours": sig(policy.order_max_time / 3600),
                        "value_hours": sig(args.max_hours),
                    }
                ],
            )
    else:
        seconds = policy.order_max_time
    env = _given(args.env)
    return {
        "server_id": args.server_id,
        "order_type": args.order_type,
        "bid": None if args.bid is UNSET else args.bid.strip().lower(),
        "currency": currency,
        "image": DEFAULT_IMAGE if args.image is UNSET else args.image.strip(),
        "ports": None if ports is None else dict(sorted(ports.items())),
        "env": None if env is None else dict(sorted(env.items())),
        "command": _given(args.command),
        "ssh_key": key,
        "jupyter_token": _given(args.jupyter_token),
        "max_seconds": seconds,
    }
