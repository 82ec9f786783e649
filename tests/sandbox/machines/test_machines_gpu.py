"""The simulated GPU host: nvidia-smi, nproc, meminfo and gpu_burn inside a machine report
the listing of real captured servers, or what a lying host delivers instead."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import asyncssh
import pytest
from machines_support import EIGHT_GPUS, ONE_GPU, TWO_GPUS, snapshot_server

from clore._wire.common import parse_gpu
from clore.sandbox.machines import Delivers, Endpoint, Machines, MachineSpec
from clore.sandbox.machines.hardware import hardware

PASSWORD = "Gpu12345"
QUERY = (
    "--query-gpu=index,name,memory.total,memory.used,utilization.gpu,power.limit,"
    "pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,driver_version"
)
# The header block of a real nvidia-smi 550.54.15 (CUDA 12.4) table, line for line.
REAL_HEADER = [
    "+-----------------------------------------------------------------------------------------+",
    "| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |",
    "|-----------------------------------------+------------------------+----------------------+",
    "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
    "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
    "|                                         |                        |               MIG M. |",
    "|=========================================+========================+======================|",
]


class Shell:
    """Runs commands in one machine over one asyncssh connection."""

    def __init__(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn

    async def __call__(self, command: str) -> tuple[int, str]:
        result = await self.conn.run(command)
        return int(result.exit_status or 0), str(result.stdout)


Boot = Callable[..., contextlib.AbstractAsyncContextManager[Shell]]


@pytest.fixture
def boot(start: Callable[..., Endpoint]) -> Boot:
    """Start a machine and log into it: ``async with boot(spec) as run: await run(cmd)``."""

    @contextlib.asynccontextmanager
    async def _boot(spec: MachineSpec | None = None, **fields: object) -> AsyncIterator[Shell]:
        endpoint = start(spec) if spec is not None else start(ssh_password=PASSWORD, **fields)
        async with asyncssh.connect(
            "127.0.0.1",
            endpoint.ssh_port,
            username="root",
            password=PASSWORD,
            known_hosts=None,
            client_keys=None,
        ) as conn:
            yield Shell(conn)

    return _boot


def listing_spec(server_id: int, order_id: int, **order: object) -> MachineSpec:
    return MachineSpec.from_server(
        order_id, snapshot_server(server_id), ssh_password=PASSWORD, **order
    )


def csv_rows(text: str) -> list[list[str]]:
    return [line.split(", ") for line in text.strip().splitlines()]


@pytest.mark.parametrize("server_id", [ONE_GPU, TWO_GPUS, EIGHT_GPUS])
async def test_nvidia_smi_reports_the_listing_of_a_captured_server(
    boot: Boot, server_id: int
) -> None:
    """-L, the CSV query and the table agree with the record's GPUs, limits, PCIe and CUDA."""
    record = snapshot_server(server_id)
    specs = record["specs"]
    count, model = parse_gpu(specs["gpu"])
    async with boot(listing_spec(server_id, 3000 + server_id % 1000)) as run:
        listed = await run("nvidia-smi -L")
        queried = await run(f"nvidia-smi {QUERY} --format=csv,noheader,nounits")
        table = await run("nvidia-smi")
    assert (listed[0], queried[0], table[0]) == (0, 0, 0)
    assert [f"GPU {i}: {model}" for i in range(count)] == [
        line.split(" (UUID: GPU-")[0] for line in listed[1].splitlines()
    ]
    rows = csv_rows(queried[1])
    assert [str(i) for i in range(count)] == [row[0] for row in rows]
    assert {model} == {row[1] for row in rows}
    assert {round(specs["gpuram"])} == {round(int(row[2]) / 1024) for row in rows}
    assert [float(pl) for pl in specs["pl"]] == [float(row[5]) for row in rows]
    assert {str(specs["pcie_rev"])} == {row[7] for row in rows}
    assert {str(specs["pcie_width"])} == {row[8] for row in rows}
    assert f"CUDA Version: {record['cuda_version']}" in table[1]
    assert count == len(re.findall(r"^\|\s+\d+  NVIDIA", table[1], re.M))


async def test_csv_header_units_and_the_real_table_layout(
    boot: Boot,
) -> None:
    """The CSV header names units like the real tool (kept with nounits); the table's header
    block is the real 550.54.15 one, every line 91 columns wide."""
    async with boot(replace(listing_spec(ONE_GPU, 3100), cuda_version="12.4")) as run:
        with_units = await run(f"nvidia-smi {QUERY} --format=csv")
        no_units = await run(f"nvidia-smi {QUERY} --format=csv,nounits")
        table = await run("nvidia-smi")
    header = (
        "index, name, memory.total [MiB], memory.used [MiB], utilization.gpu [%], "
        "power.limit [W], pcie.link.gen.current, pcie.link.gen.max, "
        "pcie.link.width.current, driver_version"
    )
    assert [header, header] == [with_units[1].splitlines()[0], no_units[1].splitlines()[0]]
    assert (
        (with_units[1].splitlines()[1])
        == "0, NVIDIA GeForce RTX 4090, 24564 MiB, 1 MiB, 0 %, 450.00 W, 1, 4, 16, 550.54.15"
    )
    assert (
        (no_units[1].splitlines()[1])
        == "0, NVIDIA GeForce RTX 4090, 24564, 1, 0, 450.00, 1, 4, 16, 550.54.15"
    )
    lines = table[1].splitlines()
    assert lines[1:8] == REAL_HEADER
    assert {91} == {len(line) for line in lines[1:] if line.strip()}


async def test_unknown_query_field_gives_the_real_error_and_exit_code(
    boot: Boot,
) -> None:
    """An unknown field prints the real tool's message on stdout and exits 2."""
    async with boot(gpu="NVIDIA GeForce RTX 4090", gpu_count=1, gpuram=24) as run:
        result = await run("nvidia-smi --query-gpu=index,fan.sped --format=csv")
    assert result == (2, 'Field "fan.sped" is not a valid field to query.\n\n')


async def test_a_lying_host_delivers_other_hardware_than_it_lists(
    boot: Boot,
) -> None:
    """delivers overrides the model, count, memory, power limit and PCIe link shown."""
    lie = Delivers(
        gpu="NVIDIA GeForce RTX 3060",
        gpu_count=1,
        gpuram=12,
        power_limit=170,
        pcie_width=4,
        pcie_gen=3,
    )
    spec = listing_spec(TWO_GPUS, 3200, delivers=lie)
    async with boot(spec) as run:
        result = await run(f"nvidia-smi {QUERY} --format=csv,noheader,nounits")
    assert spec.gpu_count == 2  # the listing still says two 4090s
    assert [row[:9] for row in csv_rows(result[1])] == [
        ["0", "NVIDIA GeForce RTX 3060", "12288", "1", "0", "170.00", "1", "3", "4"]
    ]


async def test_a_crashed_gpu_shows_err_and_nvidia_smi_still_exits_0(
    boot: Boot,
) -> None:
    """gpu_error: the last GPU shows ERR! in the table and [Unknown Error] readings; exit 0."""
    async with boot(listing_spec(TWO_GPUS, 3300, delivers=Delivers(gpu_error=True))) as run:
        table = await run("nvidia-smi")
        query = await run("nvidia-smi --query-gpu=index,utilization.gpu --format=csv,noheader")
    assert table[0] == 0
    gpu_rows = [line for line in table[1].splitlines() if "ERR!" in line]
    assert len(gpu_rows) == 1
    assert query == (0, "0, 0 %\n1, [Unknown Error]\n")


async def test_delivered_hardware_changes_on_a_running_machine(
    machines: Machines, boot: Boot
) -> None:
    """set_delivers rewrites what nvidia-smi shows without restarting the machine."""
    spec = listing_spec(ONE_GPU, 3400)
    async with boot(spec) as run:
        before = await run("nvidia-smi --query-gpu=name --format=csv,noheader")
        machines.set_delivers(spec.order_id, Delivers(gpu="NVIDIA GeForce RTX 3090"))
        after = await run("nvidia-smi --query-gpu=name --format=csv,noheader")
    assert [before[1], after[1]] == ["NVIDIA GeForce RTX 4090\n", "NVIDIA GeForce RTX 3090\n"]


async def test_gpu_burn_loads_the_gpus_and_its_speed_follows_slow(
    machines: Machines, boot: Boot
) -> None:
    """While gpu_burn runs nvidia-smi shows 100 % utilization; slow=4 quarters its Gflop/s."""
    spec = listing_spec(ONE_GPU, 3500)
    async with boot(spec) as run:
        async with run.conn.create_process("gpu_burn 0.6") as burning:
            busy = ""
            for _ in range(100):
                busy = (await run("nvidia-smi --query-gpu=utilization.gpu,pstate --format=csv"))[1]
                if "100 %" in busy:
                    break
                await asyncio.sleep(0.02)
            fast = str(await asyncio.wait_for(burning.stdout.read(), 10))
        idle = (await run("nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader"))[1]
        machines.set_delivers(spec.order_id, Delivers(slow=4.0))
        slow = (await run("gpu_burn 0.2"))[1]
    assert "100 %, P2" in busy
    assert idle == "0 %\n"
    rate = re.compile(r"\((\d+) Gflop/s\)")
    fast_rate, slow_rate = int(rate.findall(fast)[-1]), int(rate.findall(slow)[-1])
    assert round(fast_rate / 4) == slow_rate
    assert "GPU 0: OK" in fast


async def test_nproc_and_meminfo_report_the_listing(machines: Machines, boot: Boot) -> None:
    """nproc says the listing's threads; the meminfo file (and /proc/meminfo under
    bubblewrap) says its RAM."""
    spec = listing_spec(TWO_GPUS, 3600)  # 16/32 CPUs, 63.4962 GB
    async with boot(spec) as run:
        nproc = await run("nproc")
        meminfo = await run('head -1 "$CLORE_SANDBOX_MEMINFO"; head -1 /proc/meminfo')
    expected_kb = round(63.4962 * 1024 * 1024)
    assert nproc == (0, "32\n")
    lines = meminfo[1].splitlines()
    assert f"MemTotal:       {expected_kb} kB" == lines[0]
    if machines.isolation_kind == "bubblewrap":
        assert lines[0] == lines[1]


def test_laptop_cards_without_a_power_limit_report_na() -> None:
    """A listing whose pl is [0] (laptop GPUs) reports no power figures, as those cards do."""
    doc = hardware(
        MachineSpec(order_id=1, gpu="NVIDIA GeForce RTX 3070 Laptop GPU", gpu_count=2, pl=(0,))
    )
    assert [gpu["power_limit"] for gpu in doc["gpus"]] == [None, None]
    assert [gpu["memory_mib"] for gpu in doc["gpus"]] == [8192, 8192]
