"""A click group whose subcommands are imported only when they run.

``clore --help`` lists every command from the static table below (name, import target,
one-line help) without importing a single command module, so it loads nothing but click.
The workflows add their commands by adding rows to ``SECTIONS``. ``Group`` is the class
of every command group (``clore`` itself and ``spot``, ``host``, ``config``, ``sandbox``).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, Final

import click

__all__ = ["COMMANDS", "SECTIONS", "Group", "LazyGroup"]

#: (section title, [(command name, "module:attribute", one-line help)]) in --help order.
SECTIONS: Final[list[tuple[str, list[tuple[str, str, str]]]]] = [
    (
        "Find and rent",
        [
            (
                "market",
                "clore.cli.market:market",
                "List marketplace servers; record the market, its stats and history.",
            ),
            ("server", "clore.cli.market:server", "Show one server and the spot offers on it."),
            (
                "gpus",
                "clore.cli.gpus_cmd:gpus",
                "List the GPU models on the market: servers, GPUs, prices per GPU-day.",
            ),
            (
                "rent",
                "clore.cli.rent:rent",
                "Rent a server by id, or the cheapest matching filters.",
            ),
            ("spot", "clore.cli.spot:spot", "Bid on a server (spot) and change your bids."),
            (
                "hosts",
                "clore.cli.hosts_cmd:hosts",
                "Bad hosts verification caught (`host` is for servers you host).",
            ),
        ],
    ),
    (
        "Jobs",
        [
            (
                "run",
                "clore.cli.run_cmd:run",
                "Run a command on a rented GPU: rent, upload, run, outputs back, cancel.",
            ),
            (
                "jobs",
                "clore.cli.jobs_cmd:jobs",
                "Your jobs: list them; show, follow, stop or resume one.",
            ),
        ],
    ),
    (
        "Your orders",
        [
            ("orders", "clore.cli.orders:orders", "List your orders (--watch keeps it live)."),
            (
                "order",
                "clore.cli.order_cmd:order",
                "Show one order: state, endpoints, spend, time left.",
            ),
            ("cancel", "clore.cli.orders:cancel", "Cancel orders, optionally reporting an issue."),
            (
                "verify",
                "clore.cli.verify_cmd:verify",
                "Check an order's machine against its listing over SSH.",
            ),
            ("ssh", "clore.cli.access:ssh", "SSH into an order, or run a command there."),
            (
                "ssh-config",
                "clore.cli.access:ssh_config",
                "Host clore-<id> entries for active orders.",
            ),
            ("open", "clore.cli.access:open_url", "Print or open an order's HTTP URL."),
            ("copy", "clore.cli.access:copy", "Copy files to or from an order (rsync or scp)."),
        ],
    ),
    (
        "Automation",
        [
            ("watch", "clore.cli.watch_cmd:watch", "Watch for offers under a price; rent them."),
            ("monitor", "clore.cli.monitor_cmd:monitor", "Report order events; run hooks."),
            ("guard", "clore.cli.guard_cmd:guard", "Cancel orders at a spend or time limit."),
        ],
    ),
    (
        "Agents",
        [
            (
                "mcp",
                "clore.cli.mcp_cmd:mcp",
                "Serve the agent tools over MCP (stdio, or HTTP on loopback).",
            ),
        ],
    ),
    (
        "Account",
        [
            ("wallets", "clore.cli.account:wallets", "Show your wallets and balances."),
            ("fees", "clore.cli.account:fees", "Show renter and creation fees."),
            ("spend", "clore.cli.account:spend", "Spend per order, burn rate and wallet runway."),
        ],
    ),
    (
        "Hosting",
        [("host", "clore.cli.host:host", "List and configure the servers you host.")],
    ),
    (
        "Setup",
        [
            ("config", "clore.cli.config_cmd:config", "API keys and profiles."),
            ("sandbox", "clore.cli.sandbox_cmd:sandbox", "Run and control the local sandbox API."),
            (
                "completion",
                "clore.cli.completion_cmd:completion",
                "Print the shell completion script (bash, zsh, fish).",
            ),
        ],
    ),
]

COMMANDS: Final[dict[str, tuple[str, str]]] = {
    name: (target, short) for _, rows in SECTIONS for name, target, short in rows
}


def _load(target: str) -> click.Command:
    """The command at ``"module:attribute"``, its module imported now."""
    module_name, _, attr = target.partition(":")
    command = getattr(importlib.import_module(module_name), attr)
    if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake
        raise TypeError(f"{target} is not a click command")
    return command


class Group(click.Group):
    """A command group that, run without its subcommand, fails with click's one-line
    "Missing command." usage error (exit 2; ``_context.exit_code_for`` names the
    subcommands) instead of printing its whole help as the error.

    ``lazy`` names subcommands defined in other modules (name -> ``"module:attribute"``),
    imported when used: a command module never imports another to attach its command.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", False)
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, str] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = self.lazy.get(cmd_name)
        return None if target is None else _load(target)


class LazyGroup(Group):
    """The ``clore`` group: its subcommands are the table above, imported on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(
            *args, lazy={name: target for name, (target, _) in COMMANDS.items()}, **kwargs
        )

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *sorted(set(self.commands) - set(COMMANDS))]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The short help comes from the table: listing commands must not import them.
        for title, rows in SECTIONS:
            with formatter.section(title):
                formatter.write_dl([(name, short) for name, _, short in rows])

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            matches = [known for known in COMMANDS if known.startswith(name)]
            hint = f"; did you mean {', '.join(matches)}?" if matches else ""
            ctx.fail(f"no such command {name!r}{hint}")
        return super().resolve_command(ctx, args)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; every failure becomes one stderr line and a documented exit code.

        Asked to complete (``_CLORE_COMPLETE`` set by the completion script), click's
        shell classes are replaced by ``clore.cli._completion``'s first.
        """
        name = prog_name or "clore"
        if os.environ.get(complete_var or f"_{name.replace('-', '_').upper()}_COMPLETE"):
            from clore.cli._completion import install

            install()
        try:
            result = super().main(args, name, complete_var, standalone_mode=False, **extra)
        except SystemExit:
            raise
        except BaseException as exc:  # the CLI's last line of defence
            from clore.cli._context import report

            words = list(args) if args is not None else sys.argv[1:]
            verbose = any(w == "--verbose" or re.fullmatch(r"-v+", w) for w in words)
            code = report(exc, verbose=verbose)
        else:
            code = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code
