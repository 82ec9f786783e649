"""The task file of ``clore run``: decoding, one-line errors naming the field, and
``resolve`` laying the command line over the file."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

import clore
from clore.jobs.task import (
    DEFAULT_IMAGE,
    OPTION_NAMES,
    JobSpec,
    TaskError,
    TaskFile,
    load_task,
    parse_task,
    resolve,
)
from clore.market import parse_filters

REPO = Path(__file__).resolve().parents[2]


def docstring_example() -> str:
    """The YAML block of ``clore.jobs.task``'s docstring, as written there."""
    import clore.jobs.task as module

    doc = module.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    return textwrap.dedent(block)


def error_of(text: str, **overrides: Any) -> TaskError:
    with pytest.raises(TaskError) as caught:
        resolve(parse_task(text, source="t.yaml"), source="t.yaml", **overrides)
    assert "\n" not in str(caught.value)
    return caught.value


# ------------------------------------------------------------------------------ decoding


def test_the_docstring_example_parses_and_resolves(tmp_path: Path) -> None:
    """The example in the module docstring is a valid task file, read as it says."""
    path = tmp_path / "train.yaml"
    path.write_text(docstring_example())
    task = load_task(path)
    assert task.name == "train"
    assert task.resources.gpu == "RTX 4090"
    assert task.resources.gpus == 1
    assert task.resources.gpuram == 24.0
    assert task.env == {"EPOCHS": "3"}
    assert task.outputs == ["out/"]
    spec = resolve(path)
    assert spec.workdir == tmp_path.resolve()
    assert spec.filters == (
        "gpu=RTX 4090",
        "gpus>=1",
        "gpuram>=24",
        "price<=2usd",
        "reliability>=0.95",
    )
    assert (spec.max_spend, spec.max_time, spec.idle) == ("5usd", 7200.0, 900.0)
    assert spec.setup == "pip install -r requirements.txt"
    assert spec.command == 'python train.py --epochs "$EPOCHS"'
    assert spec.outputs == ("out",)


def test_the_example_task_file_resolves() -> None:
    """examples/train.yaml is valid: a command writing out/result.txt, out/ brought back."""
    spec = resolve(REPO / "examples" / "train.yaml")
    assert "out/result.txt" in spec.command
    assert spec.outputs == ("out",)
    assert spec.max_time is not None
    assert spec.max_spend is not None
    assert spec.workdir == (REPO / "examples").resolve()


def test_a_bare_file_takes_every_default() -> None:
    """Only ``run`` given: no filters but the defaults, SSH port, default image, 10 %."""
    spec = resolve(parse_task("run: echo hi"))
    assert spec == JobSpec(
        name="job",
        command="echo hi",
        setup=None,
        env={},
        workdir=None,
        excludes=(),
        outputs=(),
        filters=(),
        server_id=None,
        order_id=None,
        spot=False,
        bid=None,
        max_bid=None,
        image=DEFAULT_IMAGE,
        ports=("22:tcp",),
        currency=None,
        max_spend=None,
        max_time=None,
        idle=None,
        idle_threshold=10.0,
    )


def test_task_error_is_a_config_error() -> None:
    """Callers that handle clore.ConfigError handle task errors too."""
    error = error_of("resources: {gpus: x}")
    assert isinstance(error, clore.ConfigError)
    assert (error.field, error.source) == ("resources.gpus", "t.yaml")


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (
            "resources: {gpus: x}",
            "resources.gpus",
            "t.yaml: resources.gpus: expected an integer, got 'x'",
        ),
        ("resources: {gpus: 2.5}", "resources.gpus", "expected an integer, got 2.5"),
        ("resources: {gpus: true}", "resources.gpus", "expected an integer, got true"),
        ("resources: {gpuram: 24GB}", "resources.gpuram", "expected a number, got '24GB'"),
        ("resources: {spot: maybe}", "resources.spot", "expected true or false, got 'maybe'"),
        ("resources: 3", "resources", "expected a mapping, got 3"),
        ("resources: {gpuz: 1}", "resources.gpuz", "did you mean gpu?"),
        ("limits: {max_tim: 1h}", "limits.max_tim", "did you mean max_time?"),
        ("runn: x", "runn", "did you mean run?"),
        ("gpus: 2", "gpus", "it belongs under resources:"),
        ("idle: 15m", "idle", "it belongs under limits:"),
        ("resources: {accelerators: 'A100:4'}", "resources.accelerators", "gpu: MODEL and gpus: N"),
        ("resources: {use_spot: true}", "resources.use_spot", "spot: true"),
        ("file_mounts: {/data: s3://x}", "file_mounts", "put the files in workdir"),
        ("outputs: [1]", "outputs[0]", "expected a string, got 1"),
        ("outputs: {a: 1}", "outputs", "expected a list, got a mapping"),
        ("name: [a]", "name", "expected a string, got a list"),
        ("env: {A: true}", "env.A", "expected a string, got true (quote it)"),
        ("env: {A: [1]}", "env.A", "expected a string, got a list"),
        ("env: {A: }", "env.A", "expected a string, got nothing"),
        ("env: {1: x}", "env", "1 is not a variable name"),
        ("env: {A: x}\nenvs: {B: y}", "envs", "give env or envs, not both"),
        ("setup: [a, b]", "setup", "expected a string, got a list"),
    ],
)
def test_decoding_errors_name_the_field(text: str, field: str, message: str) -> None:
    """A wrong type or an unknown field is one line naming the file and the field path."""
    with pytest.raises(TaskError) as caught:
        parse_task(text, source="t.yaml")
    error = caught.value
    assert error.field == field
    assert str(error).startswith(f"t.yaml: {field}: ")
    assert message in str(error)
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "t.yaml: the task file is empty"),
        ("# only a comment\n", "t.yaml: the task file is empty"),
        (
            "- run: x\n",
            "t.yaml: expected a mapping of fields (name, resources, run, ...), got a list",
        ),
        ("just words\n", "got 'just words'"),
        ("1: x\n", "t.yaml: expected field names, got 1"),
        ("run: a\nresources: [\n", "t.yaml: line 3, column 1: invalid YAML"),
        (
            "run: a\n  b: c\n",
            "t.yaml: line 2, column 4: invalid YAML: mapping values are not allowed",
        ),
        (
            "run: a\nname: x\nrun: b\n",
            "t.yaml: line 3, column 1: invalid YAML: duplicate key 'run'",
        ),
        (
            "resources:\n  gpu: 4090\n  gpu: 3090\n",
            "line 3, column 3: invalid YAML: duplicate key 'gpu'",
        ),
    ],
)
def test_documents_that_are_not_task_files(text: str, message: str) -> None:
    """Empty files, non-mappings, YAML syntax errors (with the line) and repeated keys."""
    with pytest.raises(TaskError) as caught:
        parse_task(text, source="t.yaml")
    assert message in str(caught.value)
    assert caught.value.field is None
    assert "\n" not in str(caught.value)


def test_load_task_names_a_file_it_cannot_read(tmp_path: Path) -> None:
    """A missing file, a directory and bytes that are not UTF-8 are one-line errors."""
    with pytest.raises(TaskError, match=r"missing\.yaml: no such file$"):
        load_task(tmp_path / "missing.yaml")
    with pytest.raises(TaskError, match="is a directory"):
        load_task(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"run: \xff\xfe\n")
    with pytest.raises(TaskError, match="not UTF-8"):
        load_task(binary)


def test_numbers_are_read_as_text_where_text_is_meant() -> None:
    """``gpu: 4090``, ``price: 2``, ``EPOCHS: 3`` and ``max_time: 3600`` are what they say."""
    task = parse_task(
        "run: x\nresources: {gpu: 4090, price: 2, bid: 0.5}\nenv: {EPOCHS: 3, LR: 0.001}\n"
        "limits: {max_time: 3600, max_spend: 5}\n"
    )
    assert (task.resources.gpu, task.resources.price, task.resources.bid) == ("4090", "2", "0.5")
    assert task.env == {"EPOCHS": "3", "LR": "0.001"}
    spec = resolve(task)
    assert spec.max_time == 3600.0
    assert spec.max_spend == "5"
    assert spec.filters == ("gpu=4090", "spot_price<=2", "spot")


def test_envs_one_string_lists_and_empty_sections() -> None:
    """SkyPilot's ``envs``, ``outputs: out/`` for a list of one, and empty sections as absent."""
    task = parse_task(
        "run: x\nenvs: {A: b}\noutputs: out/\nexcludes: '*.ckpt'\nresources:\nlimits:\n"
    )
    assert task.env == {"A": "b"}
    assert task.outputs == ["out/"]
    assert task.excludes == ["*.ckpt"]
    assert task.resources == TaskFile().resources
    assert task.limits == TaskFile().limits


# ------------------------------------------------------------------------------ resolving


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("resources: {gpus: 0}", "resources.gpus", "expected an integer of at least 1, got 0"),
        ("resources: {gpuram: -1}", "resources.gpuram", "expected GB more than 0"),
        ("resources: {gpu: RTX}", "resources.gpu", "'RTX' names no GPU model"),
        ("resources: {price: 3eur}", "resources.price", "unknown currency 'eur'"),
        ("resources: {price: cheap}", "resources.price", "bad price 'cheap'"),
        ("resources: {price: 0}", "resources.price", "expected an amount more than 0"),
        ("resources: {bid: 1x}", "resources.bid", "unknown currency 'x'"),
        (
            "resources: {bid: 2usd, max_bid: 1usd}",
            "resources.max_bid",
            "must be at least the bid (2usd)",
        ),
        ("resources: {currency: eur}", "resources.currency", "unknown currency 'eur'"),
        ("resources: {filters: ['foo>1']}", "resources.filters[0]", "unknown field 'foo'"),
        (
            "resources: {filters: [gpus>=1, 'ram>lots']}",
            "resources.filters[1]",
            "'lots' is not a number",
        ),
        ("resources: {ports: ['8888']}", "resources.ports", "expected 'port:protocol', got '8888'"),
        ("resources: {ports: ['8888:udp']}", "resources.ports", "udp"),
        ("resources: {ports: ['80:http', '81:http']}", "resources.ports", "at most one http port"),
        ("resources: {ports: ['22:http']}", "resources.ports", "port 22 is SSH"),
        ("resources: {image: 'my image'}", "resources.image", "without spaces"),
        ("resources: {image: ''}", "resources.image", "without spaces"),
        ("limits: {max_time: 2x}", "limits.max_time", "bad duration '2x'"),
        ("limits: {max_time: 0}", "limits.max_time", "greater than zero"),
        ("limits: {idle: soon}", "limits.idle", "bad duration 'soon'"),
        ("limits: {max_spend: 5eur}", "limits.max_spend", "unknown currency 'eur'"),
        ("limits: {max_spend: 1usd/h}", "limits.max_spend", "a total amount, not a rate"),
        ("limits: {max_spend: 0}", "limits.max_spend", "more than 0"),
        ("limits: {idle_threshold: 0}", "limits.idle_threshold", "a percentage above 0"),
        ("limits: {idle_threshold: 101}", "limits.idle_threshold", "at most 100"),
        ("outputs: [/etc]", "outputs[0]", "not an absolute one, got '/etc'"),
        ("outputs: [out, ../up]", "outputs[1]", "(no ..), got '../up'"),
        ("outputs: ['a/../../b']", "outputs[0]", "no .."),
        ("outputs: ['']", "outputs[0]", "expected a path"),
        ("outputs: ['C:/x']", "outputs[0]", "not an absolute one"),
        ("env: {1A: x}", "env.1A", "'1A' is not a variable name"),
        ("env: {A-B: x}", "env.A-B", "is not a variable name"),
        ("name: ''", "name", "1 to 64 characters"),
        ("workdir: nowhere", "workdir", "no such directory"),
    ],
)
def test_every_setting_is_checked_before_anything_is_rented(
    text: str, field: str, reason: str, tmp_path: Path
) -> None:
    """A bad value in the file is one line naming the file and the field."""
    path = tmp_path / "t.yaml"
    path.write_text(text + "\nrun: x\n")
    with pytest.raises(TaskError) as caught:
        resolve(path)
    error = caught.value
    assert error.field == field
    assert error.source == str(path)
    assert str(error).startswith(f"{path}: {field}: ")
    assert reason in str(error)
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("overrides", "option", "reason"),
    [
        ({"gpus": 0}, "--gpus", "at least 1"),
        ({"gpus": "2"}, "--gpus", "expected an integer"),
        ({"gpuram": 0}, "--gpuram", "more than 0"),
        ({"gpu": "RTX"}, "--gpu", "names no GPU model"),
        ({"price": "3eur"}, "--price", "unknown currency"),
        ({"bid": "abc"}, "--bid", "bad price"),
        ({"bid": "2", "max_bid": "1"}, "--max-bid", "at least the bid"),
        ({"bid": "1", "spot": False}, "--bid", "on-demand was asked for"),
        ({"currency": "eur"}, "--currency", "unknown currency"),
        ({"filters": ("gpus>=1", "nope=1")}, "FILTER", "bad filter 'nope=1'"),
        ({"ports": "8888:http,9999:http"}, "--ports", "at most one http port"),
        ({"image": "a b"}, "--image", "without spaces"),
        ({"max_time": "forever"}, "--max-time", "bad duration"),
        ({"max_time": -5}, "--max-time", "greater than zero"),
        ({"idle": "x"}, "--idle", "bad duration"),
        ({"idle_threshold": 200}, "--idle-threshold", "at most 100"),
        ({"max_spend": "lots"}, "--max-spend", "bad price"),
        ({"outputs": ["../x"]}, "--output", "no .."),
        ({"outputs": ["/x"]}, "--output", "not an absolute one"),
        ({"excludes": [3]}, "--exclude", "expected strings"),
        ({"env": {"bad name": "x"}}, "--env bad name", "is not a variable name"),
        ({"env": {"A": 1}}, "--env A", "expected a string, got 1"),
        ({"order_id": 0}, "--order", "a positive id"),
        ({"server_id": True}, "--server", "a positive id"),
        ({"order_id": 1, "server_id": 2}, "--order", "give --order or --server, not both"),
        ({"workdir": "does-not-exist"}, "--workdir", "no such directory"),
        ({"name": "two\nlines"}, "--name", "one printable line"),
        ({"keep": "yes"}, "--keep", "expected true or false"),
    ],
)
def test_options_are_checked_and_named(overrides: dict[str, Any], option: str, reason: str) -> None:
    """A bad option is one line naming the option (no file: it came from the command line)."""
    error = error_of("run: x", **overrides)
    assert error.field == option
    assert error.source is None
    assert str(error).startswith(f"{option}: ")
    assert reason in str(error)


def test_a_command_is_required() -> None:
    """Neither ``run`` nor ``-- COMMAND``: the error says how to give one."""
    for text in ("name: x", "run: '   '"):
        error = error_of(text)
        assert error.field == "run"
        assert "write run: in the task file or give -- COMMAND" in str(error)
    assert resolve(None, command="echo hi").command == "echo hi"
    with pytest.raises(TaskError, match=r"^run: a command is required"):
        resolve(None)


def test_the_command_line_command_wins_and_words_are_quoted() -> None:
    """``-- COMMAND`` replaces ``run``; a word list is joined as a shell would split it back."""
    task = parse_task("run: python train.py")
    assert resolve(task, command="make all").command == "make all"
    assert resolve(task, command=["echo", "two words", "$HOME"]).command == (
        "echo 'two words' '$HOME'"
    )


def test_options_win_over_the_file(tmp_path: Path) -> None:
    """Every option replaces the file's value; env merges over it, excludes add to it."""
    (tmp_path / "data").mkdir()
    (tmp_path / "here").mkdir()
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: from-file\nrun: x\nworkdir: data\nenv: {A: file, B: file}\noutputs: [out]\n"
        "excludes: ['*.ckpt']\nresources: {gpu: 4090, gpus: 2, image: file/image, "
        "ports: ['8888:http'], currency: btc, price: 1usd}\n"
        "limits: {max_time: 1h, idle: 5m, idle_threshold: 5, max_spend: 1usd}\n"
    )
    spec = resolve(
        path,
        name="from-cli",
        env={"B": "cli", "C": "cli"},
        outputs=["results/"],
        excludes=["*.tmp"],
        gpu="3090",
        gpus=1,
        image="cli/image",
        ports="6006:tcp",
        currency="usd",
        price="2usd",
        max_time="2h",
        idle="10m",
        idle_threshold=20.0,
        max_spend="3usd",
        verify=False,
        keep=True,
        recover=True,
    )
    assert spec.name == "from-cli"
    assert spec.env == {"A": "file", "B": "cli", "C": "cli"}
    assert spec.outputs == ("results",)
    assert spec.excludes == ("*.ckpt", "*.tmp")
    assert spec.filters == ("gpu=3090", "gpus>=1", "price<=2usd")
    assert spec.image == "cli/image"
    assert spec.ports == ("22:tcp", "6006:tcp")
    assert spec.currency == "USD-Blockchain"
    assert (spec.max_time, spec.idle, spec.idle_threshold) == (7200.0, 600.0, 20.0)
    assert spec.max_spend == "3usd"
    assert (spec.verify, spec.keep, spec.recover) == (False, True, True)
    assert spec.workdir == (tmp_path / "data").resolve()


def test_none_means_not_given() -> None:
    """Options left at None keep the file's values."""
    task = parse_task("run: x\nresources: {gpus: 2, spot: true}\nlimits: {max_time: 1h}")
    spec = resolve(task, gpus=None, spot=None, max_time=None, command=None)
    assert spec.filters == ("gpus>=2", "spot")
    assert spec.spot is True
    assert spec.max_time == 3600.0
    assert spec.command == "x"


def test_workdir_is_relative_to_the_task_file_and_the_option_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's ``workdir`` is read beside the file, ``--workdir`` where the user is."""
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (tmp_path / "elsewhere" / "src").mkdir(parents=True)
    (project / "t.yaml").write_text("run: x\nworkdir: src\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert resolve(project / "t.yaml").workdir == (project / "src").resolve()
    assert (
        resolve(project / "t.yaml", workdir="src").workdir
        == (tmp_path / "elsewhere" / "src").resolve()
    )
    (project / "file.txt").write_text("x")
    with pytest.raises(TaskError, match=r"workdir: not a directory: "):
        resolve(project / "t.yaml", workdir=str(project / "file.txt"))


def test_the_name_defaults_to_the_task_files_name(tmp_path: Path) -> None:
    """Without ``name``, the job is named after the file (``train.yaml`` -> ``train``)."""
    path = tmp_path / "train.yaml"
    path.write_text("run: x\n")
    assert resolve(path).name == "train"
    assert resolve(path, name="mine").name == "mine"


# ------------------------------------------------------------------------------ spot and filters


def test_a_bid_implies_spot_and_spot_filters() -> None:
    """``--bid`` makes the rental spot: the cap becomes a spot-price cap, ``spot`` is required."""
    task = parse_task("run: x\nresources: {gpu: 4090, price: 0.5usd}")
    on_demand = resolve(task)
    assert (on_demand.spot, on_demand.filters) == (False, ("gpu=4090", "price<=0.5usd"))
    spot = resolve(task, bid="0.3usd", max_bid="0.4usd")
    assert (spot.spot, spot.bid, spot.max_bid) == (True, "0.3usd", "0.4usd")
    assert spot.filters == ("gpu=4090", "spot_price<=0.5usd", "spot")
    assert resolve(task, max_bid="1usd").spot is True


def test_on_demand_on_the_command_line_drops_the_files_bids() -> None:
    """``spot=False`` (on-demand asked for) wins over a file that bids."""
    task = parse_task("run: x\nresources: {spot: true, bid: 1usd, max_bid: 2usd}")
    spec = resolve(task, spot=False)
    assert (spec.spot, spec.bid, spec.max_bid) == (False, None, None)
    assert "spot" not in spec.filters


def test_max_bid_below_bid_is_refused_only_when_comparable() -> None:
    """Bids in one currency are compared per day; different currencies wait for rates."""
    task = parse_task("run: x")
    assert resolve(task, bid="1usd/h", max_bid="30usd").max_bid == "30usd"
    with pytest.raises(TaskError, match="--max-bid: must be at least the bid"):
        resolve(task, bid="1usd/h", max_bid="20usd")
    assert resolve(task, bid="1usd", max_bid="0.0001btc").spot is True
    with pytest.raises(TaskError, match="at least the bid"):
        resolve(task, bid="2", max_bid="1")


def test_a_command_line_filter_on_a_field_replaces_the_files() -> None:
    """``gpus=1`` on the command line drops the file's ``gpus>=4``; other fields stay."""
    task = parse_task(
        "run: x\nresources: {gpus: 4, gpu: 4090, filters: ['reliability>=0.9', 'gpus<8']}"
    )
    spec = resolve(task, filters=("gpus=1", "cc=US,DE", "reliability>=0.99"))
    assert spec.filters == ("gpu=4090", "gpus=1", "cc=US,DE", "reliability>=0.99")
    assert resolve(task, filters=("ondemand<=1usd",)).filters[-1] == "ondemand<=1usd"


def test_built_filters_are_filter_language_words() -> None:
    """Every filter ``resolve`` builds parses in ``clore.market``'s language, as the field."""
    spec = resolve(
        parse_task(
            "run: x\nresources: {gpu: 'A100 80GB', gpus: 8, gpuram: 79.5, price: 0.2usd/h, "
            "filters: ['cuda>=12.2']}"
        )
    )
    parsed = parse_filters(spec.filters)
    assert [(f.field.name, f.op) for f in parsed] == [
        ("gpu", "="),
        ("gpus", ">="),
        ("gpuram", ">="),
        ("price", "<="),
        ("cuda", ">="),
    ]
    assert parsed[2].values == (79.5,)
    assert parsed[3].values[0].per_day == pytest.approx(4.8)


def test_ports_always_hold_ssh_first() -> None:
    """22:tcp is always forwarded (the runner logs in), whatever the file or option says."""
    task = parse_task("run: x\nresources: {ports: ['8888:http', '22:tcp', 6006/tcp]}")
    assert resolve(task).ports == ("22:tcp", "8888:http", "6006:tcp")
    assert resolve(task, ports=["7000:tcp, 7001:tcp"]).ports == ("22:tcp", "7000:tcp", "7001:tcp")


# ------------------------------------------------------------------------------ the spec


def test_the_spec_round_trips_through_json(tmp_path: Path) -> None:
    """``to_json`` is plain JSON and ``from_json`` gives the same spec back (the job record)."""
    spec = resolve(
        parse_task("run: x\nresources: {gpu: 4090, bid: 1usd}\noutputs: [out]\nenv: {A: b}"),
        workdir=str(tmp_path),
        server_id=7,
        max_time=60,
    )
    data = json.loads(json.dumps(spec.to_json()))
    assert data["workdir"] == str(tmp_path.resolve())
    assert data["filters"] == ["gpu=4090", "spot"]
    assert JobSpec.from_json(data) == spec


def test_unknown_overrides_are_a_programming_error() -> None:
    """A misspelt keyword (the CLI's bug, not the user's) is a TypeError, not ignored."""
    with pytest.raises(TypeError, match="max_tme"):
        resolve(None, command="x", max_tme="1h")
    assert set(OPTION_NAMES) >= {"command", "filters", "server_id", "order_id", "outputs"}
