"""Documentation is tested: every command has help text and a section in docs/cli.md."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from clore.cli import cli

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _walk(
    group: click.Group, ctx: click.Context, prefix: str
) -> Iterator[tuple[str, click.Command]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from _walk(command, click.Context(command, parent=ctx, info_name=name), path)


COMMANDS = list(_walk(cli, click.Context(cli, info_name="clore"), "clore"))


def test_the_command_tree_is_complete() -> None:
    """The tree holds every command the issue asks for."""
    paths = {path for path, _ in COMMANDS}
    wanted = {
        "clore market", "clore server", "clore rent", "clore orders", "clore order",
        "clore ssh", "clore ssh-config", "clore open", "clore copy", "clore cancel",
        "clore spot bid", "clore spot price", "clore wallets", "clore fees", "clore spend",
        "clore host list", "clore host config", "clore host set", "clore config set-key",
        "clore config use", "clore config show", "clore sandbox serve", "clore sandbox reset",
        "clore sandbox advance", "clore sandbox fault",
    }  # fmt: skip
    assert wanted - paths == set()


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_help_text(path: str, command: click.Command) -> None:
    """Each command and group explains itself in --help."""
    assert (command.help or "").strip(), path
    assert command.get_short_help_str().strip(), path


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_a_section_in_the_docs(path: str, command: click.Command) -> None:
    """docs/cli.md has a heading for each command."""
    headings = re.findall(r"^#{2,4} `([^`]+)`", DOCS.read_text(encoding="utf-8"), re.MULTILINE)
    assert any(h == path or h.startswith(path + " ") for h in headings), path


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_option_is_documented(path: str, command: click.Command) -> None:
    """Every long option of a command is mentioned in its docs section."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"^#{{2,4}} `{re.escape(path)}[ `].*?(?=^#{{2,4}} `|\Z)", text, re.M | re.S)
    assert match is not None, path
    section = match.group(0)
    for param in command.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--") and opt not in ("--help",):
                assert opt in section, f"{path}: {opt}"


def test_docs_list_the_exit_codes() -> None:
    """The exit code table names 0, 1, 2, 3, 4, 5 and 130."""
    text = DOCS.read_text(encoding="utf-8")
    for code in ("0", "1", "2", "3", "4", "5", "130"):
        assert re.search(rf"^\| {code} \|", text, re.M), code


def test_docs_explain_shell_completion() -> None:
    """Completion instructions for bash, zsh and fish are in the docs."""
    text = DOCS.read_text(encoding="utf-8")
    for shell in ("bash", "zsh", "fish"):
        assert f"clore completion {shell}" in text


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_takes_json(path: str, command: click.Command) -> None:
    """Every command (not group) accepts --json, as the issue asks of all of them."""
    if isinstance(command, click.Group):
        return
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert "--json" in options, path
