"""Helpers of the CLI tests: ``Cli`` runs ``clore ARGS`` in-process against a sandbox."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner, Result

from clore.cli import cli
from clore.cli._context import AppContext

if TYPE_CHECKING:
    from clore import Clore
    from clore._clock import ManualClock
    from clore.sandbox import Sandbox


@dataclass
class Cli:
    """Runs ``clore ARGS`` in-process against one sandbox, as its demo user by default."""

    sandbox: Sandbox
    clock: ManualClock
    client: Clore

    def __call__(
        self, *args: str, input: str | None = None, client: Any = None, env: Any = None
    ) -> Result:
        app = AppContext(
            client_instance=client or self.client,
            clock_instance=self.clock,
            sandbox_instance=self.sandbox,
        )
        return CliRunner().invoke(cli, list(args), obj=app, input=input, env=env)

    def json(self, *args: str, **kwargs: Any) -> Any:
        """Run with --json, check the exit code is 0 and decode stdout."""
        result = self(*args, "--json", **kwargs)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def rent_cheapest_4090(self, *extra: str) -> dict[str, Any]:
        """Rent the cheapest single RTX 4090 and wait for it; return the order record."""
        doc = self.json("rent", "--cheapest", "gpu=4090", "gpus=1", "--yes", "--wait", *extra)
        order: dict[str, Any] = doc["order"]
        return order
