"""``clore completion bash|zsh|fish``: print the shell completion script.

The script is click's (``_CLORE_COMPLETE=bash_source clore`` prints the same); what it
completes is ``clore.cli._completion``'s: filter words, GPU models, order ids, profiles,
currencies and sandbox faults, from this machine's files, never over the network.
"""

from __future__ import annotations

import click

from clore.cli._context import AppContext, pass_app
from clore.cli._output import json_option

__all__ = ["completion"]

_HELP = """Print the completion script for SHELL (bash, zsh or fish).

\b
  bash:  eval "$(clore completion bash)"     # in ~/.bashrc (bash 4.4 or newer)
  zsh:   eval "$(clore completion zsh)"      # in ~/.zshrc, after compinit
  fish:  clore completion fish > ~/.config/fish/completions/clore.fish

Completes commands and options, filter words (market gp<TAB>: gpu=, gpus>=, ...), the
GPU models after gpu= and the countries after cc= (from the cached marketplace: run
`clore market` once), order ids (cancel, order, ssh: from the last `clore orders`),
profiles, currencies and sandbox faults. Completion reads only local files: it sends no
request.
"""


@click.command(help=_HELP, short_help="Print the shell completion script.")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]), metavar="SHELL")
@json_option
@pass_app
def completion(app: AppContext, shell: str) -> None:
    from clore.cli import cli
    from clore.cli._completion import script

    text = script(shell, cli)
    app.out.result({"shell": shell, "script": text}, lambda: click.echo(text, nl=False))
