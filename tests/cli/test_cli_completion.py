"""Shell completion: `clore completion bash` loaded into a real bash, asked for candidates.

Each test's cache directory holds a marketplace cache file written by
``clore.market.cache.load`` (against the in-process sandbox) and the recent orders written
by ``clore.rentals.recent.remember``, both under the embedded sandbox's label, so that
``clore --sandbox ...<TAB>`` completes from them; the completing process itself never
opens the sandbox nor sends a request. Bash's ``COMP_WORDS`` are given as bash splits a
line (``gpu=40`` is ``gpu``, ``=``, ``40``); one test types into an interactive bash on a
pseudo-terminal instead.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from clore import Clore
from clore.cli import cli
from clore.market import canonical_model, matches_model, parse_filter

BIN = Path(sys.executable).parent
EMBEDDED = "sandbox:embedded"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
    for name in ("CLORE_CONFIG_DIR", "CLORE_CACHE_DIR", "CLORE_DATA_DIR"):
        env[name] = os.environ[name]
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@pytest.fixture
def bash_script(tmp_path: Path) -> Path:
    """The bash completion script, as `clore completion bash` prints it, in a file."""
    done = subprocess.run(
        [str(BIN / "clore"), "completion", "bash"],
        capture_output=True, text=True, env=_env(), timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    path = tmp_path / "clore.bash"
    path.write_text(done.stdout)
    return path


def complete_line(script: Path, *words: str, **env: str) -> tuple[list[str], bool]:
    """COMPREPLY of `_clore_completion` in a real bash, COMP_WORDS being ``words`` and the
    cursor in the last one; and whether it asked bash for no space after the word."""
    body = (
        f"source {script}\n"
        "compopt() { [[ $1 == -o && $2 == nospace ]] && NOSPACE=1; }\n"  # the builtin needs a TAB
        'COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))\n'
        "_clore_completion clore\n"
        'printf "%s\\n" "${COMPREPLY[@]}" "nospace=${NOSPACE:-0}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", body, "bash", *words],
        capture_output=True, text=True, env=_env(**env), timeout=30,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    *lines, nospace = done.stdout.splitlines()
    return [line for line in lines if line], nospace == "nospace=1"


def complete(script: Path, *words: str, **env: str) -> list[str]:
    """The candidates bash gets for ``words`` (see ``complete_line``)."""
    return complete_line(script, *words, **env)[0]


def as_shell_words(candidates: list[str]) -> list[str]:
    """What bash makes of each candidate once it is on a command line (escapes removed)."""
    body = 'for w in "$@"; do eval "printf \'%s\\n\' $w"; done'
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", body, "bash", *candidates],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.fixture
def cached_market(clore_client: Clore) -> list[str]:
    """The embedded sandbox's marketplace cached through the library; its GPU models."""
    from clore.market.cache import load

    data = load(clore_client, endpoint=EMBEDDED, now=time.time(), rates=False)
    return sorted({canonical_model(s.gpu_model) for s in data.servers} - {""})


@pytest.fixture
def listed_orders(clore_client: Clore) -> Iterator[tuple[int, int]]:
    """Two orders, one of them cancelled, remembered as `clore --sandbox orders --all`
    lists them: (running id, ended id)."""
    from clore.rentals.recent import remember

    servers = [s for s in clore_client.marketplace() if not s.rented and s.price.on_demand]
    made = []
    for server in servers[:2]:
        made.append(
            clore_client.create_order(
                server.id, image="cloreai/jupyter:ubuntu24.04-v2", ssh_password="abc123"
            ).id
        )
    clore_client.cancel_order(made[1])
    remember(EMBEDDED, clore_client.my_orders(include_completed=True))
    yield made[0], made[1]


def test_the_command_prints_clicks_script_for_each_shell() -> None:
    """`clore completion SHELL` prints what `_CLORE_COMPLETE=SHELL_source clore` prints."""
    for shell in ("bash", "zsh", "fish"):
        ours = subprocess.run(
            [str(BIN / "clore"), "completion", shell],
            capture_output=True, text=True, env=_env(), timeout=30,
        )  # fmt: skip
        clicks = subprocess.run(
            [str(BIN / "clore")],
            capture_output=True, text=True, env=_env(_CLORE_COMPLETE=f"{shell}_source"),
            timeout=30,
        )  # fmt: skip
        assert ours.returncode == clicks.returncode == 0, ours.stderr + clicks.stderr
        assert ours.stdout == clicks.stdout
        assert "_clore_completion" in ours.stdout and "_CLORE_COMPLETE" in ours.stdout
    doc = json.loads(CliRunner().invoke(cli, ["completion", "zsh", "--json"]).stdout)
    assert doc["shell"] == "zsh" and "compdef _clore_completion clore" in doc["script"]


def test_an_unknown_shell_is_exit_2() -> None:
    """Only bash, zsh and fish have scripts."""
    result = CliRunner().invoke(cli, ["completion", "tcsh"])
    assert result.exit_code == 2
    assert "tcsh" in result.stderr


def test_commands_complete(bash_script: Path) -> None:
    """The first word completes to the command names, `completion` among them."""
    assert complete(bash_script, "clore", "comp") == ["completion"]
    assert complete(bash_script, "clore", "ord") == ["orders", "order"]


def test_filter_fields_complete_with_their_operators(bash_script: Path) -> None:
    """`market gp<TAB>` offers gpu=, gpus>=, ...: escaped so the shell takes `>` literally."""
    found = complete(bash_script, "clore", "market", "gp")
    words = as_shell_words(found)
    assert {"gpu=", "gpu~", "gpus=", "gpus>=", "gpus<=", "gpuram>=", "gpu_price<="} <= set(words)
    assert all(w.startswith("gp") for w in words)
    # Quoted, every one, so that their common start is a word too: not a redirection.
    assert "'gpus>='" in found and all(w.startswith("'") for w in found)
    assert complete_line(bash_script, "clore", "market", "coun") == (["country="], True)
    assert complete_line(bash_script, "clore", "market", "gpus", ">") == (["="], True)
    every = as_shell_words(complete(bash_script, "clore", "market", "gpus"))
    assert set(every) == {"gpus=", "gpus!=", "gpus>", "gpus>=", "gpus<", "gpus<="}
    for word in every:
        parse_filter(word + "1")  # each one is a filter the language takes
    assert as_shell_words(complete(bash_script, "clore", "market", "coun")) == ["country="]
    assert as_shell_words(complete(bash_script, "clore", "watch", "spo")) == [
        "spot_price<=", "spot_price>=", "spot",
    ]  # fmt: skip
    assert as_shell_words(complete(bash_script, "clore", "gpus", "spot", "=")) == ["yes", "no"]


def test_market_completes_its_subcommands_and_filters(bash_script: Path) -> None:
    """`market <TAB>`: record, stats and history, then the filter fields."""
    found = as_shell_words(complete(bash_script, "clore", "market", ""))
    assert found[:3] == ["record", "stats", "history"]
    assert "gpu=" in found and "price<=" in found


def test_gpu_models_complete_from_the_cached_market(
    bash_script: Path, cached_market: list[str]
) -> None:
    """After gpu= (split by bash at the =) the models of the cached marketplace, as queries
    that name exactly that model."""
    found = complete(bash_script, "clore", "--sandbox", "market", "gpu", "=", "409")
    queries = as_shell_words(found)
    assert {"4090", "4090 Laptop"} <= set(queries) and "4090\\ Laptop" in found
    for query in queries:
        named = {m for m in cached_market if matches_model(query.lower(), m)}
        assert len(named) == 1 and "4090" in next(iter(named)), query
        parse_filter(f"gpu={query}")
    every = as_shell_words(complete(bash_script, "clore", "--sandbox", "market", "gpu", "="))
    assert len(every) == len(cached_market)
    # One bash word inside quotes: whole words, not escaped (bash keeps the quote).
    quoted = complete(bash_script, "clore", "--sandbox", "market", "'gpu=rtx 309")
    assert "gpu=RTX 3090" in quoted and "gpu=RTX 3090 Ti" in quoted


def test_countries_and_lists_complete(bash_script: Path, cached_market: list[str]) -> None:
    """cc= completes the cached countries; in a list, the value after the last comma."""
    found = complete(bash_script, "clore", "--sandbox", "rent", "--cheapest", "cc", "=", "U")
    assert found and all(len(c) == 2 and c.startswith("U") for c in found)
    assert "US" in found
    listed = complete(bash_script, "clore", "--sandbox", "market", "gpu", "=", "4090,309")
    assert listed and all(c.startswith("4090,309") for c in listed)
    # rent without --cheapest takes a server id: no filter words.
    assert complete(bash_script, "clore", "--sandbox", "rent", "gp") == []


def test_nothing_cached_means_no_models_and_no_request(bash_script: Path) -> None:
    """Without a cached marketplace there are no model names, quickly; nothing is fetched
    (the embedded sandbox is not even created)."""
    started = time.monotonic()
    assert complete(bash_script, "clore", "--sandbox", "market", "gpu", "=", "40") == []
    assert time.monotonic() - started < 10
    assert not (Path(os.environ["CLORE_DATA_DIR"]) / "sandbox.db").exists()
    # Against an API that is not reachable either: the listing is not fetched.
    elsewhere = ("clore", "--base-url", "http://127.0.0.1:9/v1", "market")
    assert complete(bash_script, *elsewhere, "gpu", "=") == []


def test_order_ids_complete_from_the_last_listing(
    bash_script: Path, listed_orders: tuple[int, int]
) -> None:
    """cancel and ssh offer the running order; order offers both; the API matters."""
    running, ended = listed_orders
    assert complete(bash_script, "clore", "--sandbox", "cancel", "") == [str(running)]
    assert complete(bash_script, "clore", "--sandbox", "ssh", "") == [str(running)]
    assert complete(bash_script, "clore", "--sandbox", "order", "") == [str(running), str(ended)]
    assert complete(bash_script, "clore", "--sandbox", "cancel", str(running), "") == []
    assert complete(bash_script, "clore", "--sandbox", "order", str(ended)) == [str(ended)]
    # Another API's orders are not these.
    assert complete(bash_script, "clore", "cancel", "") == []


def test_zsh_and_fish_get_whole_words_with_descriptions(
    cached_market: list[str], listed_orders: tuple[int, int]
) -> None:
    """zsh and fish answer whole words (they quote them) with what each one is."""
    running, _ = listed_orders
    zsh = subprocess.run(
        [str(BIN / "clore")], capture_output=True, text=True, timeout=30,
        env=_env(_CLORE_COMPLETE="zsh_complete", COMP_WORDS="clore --sandbox market gpus>",
                 COMP_CWORD="3"),
    ).stdout.split("\n")  # fmt: skip
    assert zsh[:3] == ["plain", "gpus>=", "number of GPUs"]
    fish = subprocess.run(
        [str(BIN / "clore")], capture_output=True, text=True, timeout=30,
        env=_env(_CLORE_COMPLETE="fish_complete", COMP_WORDS="clore --sandbox ssh ",
                 COMP_CWORD=""),
    ).stdout.splitlines()  # fmt: skip
    assert len(fish) == 1 and fish[0].startswith(f"plain,{running}\tserver "), fish
    fish_gpu = subprocess.run(
        [str(BIN / "clore")], capture_output=True, text=True, timeout=30,
        env=_env(_CLORE_COMPLETE="fish_complete", COMP_WORDS="clore --sandbox market gpu=409",
                 COMP_CWORD="gpu=409"),
    ).stdout.splitlines()  # fmt: skip
    assert "plain,gpu=4090\tRTX 4090" in fish_gpu


def test_profiles_currencies_and_faults_complete(bash_script: Path) -> None:
    """--profile and config use/remove: the profiles; --currency: the names
    parse_currency takes; sandbox fault: endpoints, then faults."""
    runner = CliRunner()
    for name in ("work", "sbx"):
        saved = runner.invoke(cli, ["config", "set-key", "--profile", name, "--no-check"],
                              input="k" * 20 + "\n")  # fmt: skip
        assert saved.exit_code == 0, saved.output
    assert complete(bash_script, "clore", "--profile", "") == ["sbx", "work"]
    assert complete(bash_script, "clore", "config", "remove", "w") == ["work"]
    assert complete(bash_script, "clore", "--profile", "=", "s") == ["sbx"]
    currencies = complete(bash_script, "clore", "market", "--currency", "")
    assert {"btc", "clore", "usd", "bitcoin"} <= set(currencies)
    clore_names = complete(bash_script, "clore", "market", "-c", "=", "cl")
    assert clore_names == ["clore", "CLORE-Blockchain"]
    assert complete(bash_script, "clore", "sandbox", "fault", "create_o") == ["create_order"]
    faults = complete(bash_script, "clore", "sandbox", "fault", "create_order", "late")
    assert faults == ["late_commit"]


def test_completion_never_shows_a_traceback(bash_script: Path) -> None:
    """A broken config, an unknown command, a bad option value: no candidates, no noise."""
    config = Path(os.environ["CLORE_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text("not = [valid")
    assert complete(bash_script, "clore", "--profile", "") == []
    assert complete(bash_script, "clore", "cancel", "") == []
    assert complete(bash_script, "clore", "no-such-command", "x") == []
    complete(bash_script, "clore", "--pacing", "bogus", "market", "gp")  # no stderr


def _typed(script: Path, *keys: str) -> str:
    """Type ``keys`` into an interactive bash on a pty (``TAB`` is a TAB, then a pause for
    bash to complete), run the line with `printf '<%s>'` before it; what it printed."""
    import signal

    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive bash
        os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], _env())
    seen = b""

    def read_until(marker: bytes, seconds: float = 20.0) -> None:
        nonlocal seen
        deadline = time.monotonic() + seconds
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    return

    try:
        # The prompt is spelt apart in the command so that its echo does not match it.
        os.write(fd, f"source {script}; PS1='READY''> '\n".encode())
        read_until(b"READY> ")
        seen = b""
        for key in keys:
            os.write(fd, b"\t" if key == "TAB" else key.encode())
            if key == "TAB":
                time.sleep(1.0)  # the completing process runs
        os.write(fd, b"\x01printf '<%s>' \x05\n")  # Ctrl-A, the printf, Ctrl-E, Enter
        read_until(b"READY> ")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    text = seen.decode(errors="replace")
    return text[text.find("<clore>") :].split("\x1b")[0] if "<clore>" in text else text


@pytest.mark.slow
def test_tab_in_an_interactive_bash_types_safe_words(
    bash_script: Path, cached_market: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a real bash on a terminal: gpu=409<TAB> is gpu=4090; coun<TAB> is country= with
    no space after it; gpu_price<TAB> opens a quote, so the <= typed next is no redirect."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert _typed(bash_script, "clore --sandbox market gpu=409", "TAB") == (
        "<clore><--sandbox><market><gpu=4090>"
    )
    assert _typed(bash_script, "clore market coun", "TAB", "US") == "<clore><market><country=US>"
    assert _typed(bash_script, "clore market gpu_price", "TAB", "<=3usd'") == (
        "<clore><market><gpu_price<=3usd>"
    )
    assert _typed(bash_script, "clore market 'gpus>", "TAB", "2") == "<clore><market><gpus>=2>"
    assert list(work.iterdir()) == []  # no file a redirect would have made
