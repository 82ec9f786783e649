"""The ``clore`` command line: thin over the public SDK, one module per command group.

Importing this package loads click and nothing heavier: commands live in their own
modules, imported only when they run (``clore.cli._group.LazyGroup``), and they import
httpx, msgspec and rich inside their functions.
"""

from __future__ import annotations

from typing import Any

import click

from clore import __version__
from clore.cli._group import LazyGroup
from clore.cli._params import ProfileName

__all__ = ["cli", "main"]

_EPILOG = """\
Every command takes --json (one JSON document on stdout). Exit codes: 0 ok, 1 API
error, 2 usage or bad input, 3 authentication, 4 not found, 5 rate-limited after
retries, 130 interrupted. Full reference: docs/cli.md.
"""


def _use_pacing(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # Through the environment, so every client of this run (and the commands its hooks
    # run) paces the same way.
    if value is None:
        return
    from clore import ConfigError
    from clore.fleet import use_pacing

    try:
        use_pacing(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("--pacing: "), ctx, param) from None


@click.group(
    "clore",
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=_EPILOG,
)
@click.version_option(
    __version__, "-V", "--version", prog_name="clore", message="%(prog)s %(version)s"
)
@click.option("--json", "json_", is_flag=True, help="Print one JSON document on stdout.")
@click.option(
    "--profile", type=ProfileName(), metavar="NAME", help="Use this profile of config.toml."
)
@click.option("--base-url", metavar="URL", help="API base URL (e.g. a sandbox server's /v1).")
@click.option(
    "--sandbox",
    is_flag=True,
    help="Use the embedded sandbox (state in the data dir; no server, no real money).",
)
@click.option(
    "--pacing",
    metavar="local|URL",
    callback=_use_pacing,
    expose_value=False,
    help="Where the key's pacing and the loops' ledgers live: 'local' (this machine's file) "
    "or a fleet's Redis URL (else CLORE_PACING, CLORE_PACING_URL, the profile's pacing_url).",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Print the requests the command makes (secrets redacted) and send none that "
    "changes anything: the command stops there, exit 0 (env CLORE_EXPLAIN=1).",
)
@click.option("-v", "--verbose", count=True, help="Log requests to stderr (key redacted).")
@click.pass_context
def cli(
    ctx: click.Context,
    json_: bool,
    profile: str | None,
    base_url: str | None,
    sandbox: bool,
    explain: bool,
    verbose: int,
) -> None:
    """clore: rent GPUs on the Clore.ai marketplace from your terminal.

    Prices are per day (and per hour where shown), always with their currency.
    """
    import os

    from clore.cli._context import (
        EXIT_USAGE,
        EXPLAIN_ENV,
        NOT_EXPLAINED,
        AppContext,
        CliError,
        explain_from_env,
    )

    app = ctx.ensure_object(AppContext)
    app.json = app.json or json_
    app.profile = profile or app.profile
    app.base_url = base_url or app.base_url
    app.sandbox = app.sandbox or sandbox
    app.explain = app.explain or explain or explain_from_env()
    app.verbose = max(app.verbose, verbose)
    if app.explain:
        why = NOT_EXPLAINED.get(ctx.invoked_subcommand or "")
        if why is not None:
            raise CliError(
                f"--explain covers API requests only; `clore {ctx.invoked_subcommand}` is "
                f"not run under it: {why}",
                EXIT_USAGE,
            )
        # Through the environment, so the `clore` commands a hook runs explain too.
        os.environ[EXPLAIN_ENV] = "1"
    app.setup_logging()
    ctx.call_on_close(app.close)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point (``clore``) and ``python -m clore``."""
    return cli.main(argv, prog_name="clore")
