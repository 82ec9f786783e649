"""Verification over real SSH against sandbox machines of real captured listings: an honest
host passes, and each lie of ``Delivers`` fails the check it should, with both values."""

from __future__ import annotations

import time
from pathlib import Path

import asyncssh
import pytest
from verify_support import (
    EIGHT_GPUS,
    ONE_GPU,
    PASSWORD,
    QUICK,
    TWO_GPUS,
    StartListing,
    snapshot_server,
)

from clore.rentals.verify import (
    Credentials,
    Report,
    VerifyOptions,
    averify,
    verify,
)
from clore.sandbox.machines import Machines

CREDS = Credentials(password=PASSWORD)


def verdicts(report: Report) -> dict[str, str]:
    return {c.name: c.verdict for c in report.checks}


def not_ok(report: Report) -> dict[str, str]:
    """The checks that are neither ok nor skipped, but for the disk test (the sandbox's
    disk is this host's, whatever the listing says)."""
    return {
        c.name: c.verdict
        for c in report.checks
        if c.verdict not in ("ok", "skip") and c.name != "disk_write"
    }


@pytest.mark.parametrize(
    ("server_id", "gpus", "model", "power", "link"),
    [
        (ONE_GPU, "1", "NVIDIA GeForce RTX 4090", "450 W", ("x16", "gen 4")),
        (TWO_GPUS, "2", "NVIDIA GeForce RTX 4090", "350 W", ("x8", "gen 2")),
        (EIGHT_GPUS, "8", "NVIDIA GeForce RTX 3090", "250-265 W", ("x1", "gen 2")),
    ],
)
def test_an_honest_host_passes_every_check(
    start_listing: StartListing,
    server_id: int,
    gpus: str,
    model: str,
    power: str,
    link: tuple[str, str],
) -> None:
    """A machine delivering its listing passes, each value measured as listed."""
    target, _ = start_listing(server_id)
    report = verify(target, CREDS, listing=snapshot_server(server_id), options=QUICK)
    assert not_ok(report) == {}
    assert report.verdict in ("ok", "warn")
    shown = {c.name: (c.listed, c.measured) for c in report.checks}
    assert (gpus, gpus) == shown["gpu_count"]
    assert (model, model) == shown["gpu_model"]
    assert (power, power) == shown["power_limit"]
    assert (link[0], link[0]) == shown["pcie_width"]
    assert (link[1], link[1]) == shown["pcie_gen"]
    assert report.check("throughput").verdict == "ok"  # type: ignore[union-attr]
    assert report.measured is not None and report.measured.under_load


@pytest.mark.parametrize(
    ("server_id", "lie", "check", "listed", "measured", "reason"),
    [
        (
            ONE_GPU,
            {"gpu": "NVIDIA GeForce RTX 3090"},
            "gpu_model",
            "NVIDIA GeForce RTX 4090",
            "NVIDIA GeForce RTX 3090",
            "GPU 0 is RTX 3090, not RTX 4090",
        ),
        (TWO_GPUS, {"gpu_count": 1}, "gpu_count", "2", "1", "1 fewer than listed"),
        (ONE_GPU, {"gpuram": 16}, "gpu_memory", "24 GB", "16 GB", "GPU 0: 16.0 GB"),
        (ONE_GPU, {"power_limit": 300}, "power_limit", "450 W", "300 W", "(67%)"),
        (ONE_GPU, {"pcie_width": 4}, "pcie_width", "x16", "x4", "GPU 0 at x4 (under load)"),
        (ONE_GPU, {"pcie_gen": 3}, "pcie_gen", "gen 4", "gen 3", "GPU 0 at gen 3 (under load)"),
        (
            TWO_GPUS,
            {"gpu_error": True},
            "gpu_health",
            "no errors",
            "4 problem(s)",
            "nvidia-smi exited 0 but GPU 1 shows ERR!",
        ),
        (
            EIGHT_GPUS,
            {"slow": 3.0},
            "throughput",
            "35.6 TFLOPS peak FP32",
            "8.5 TFLOPS (gpu_burn)",
            "24% of peak (< 30%)",
        ),
    ],
)
def test_each_lie_fails_its_check_with_listed_and_measured(
    start_listing: StartListing,
    server_id: int,
    lie: dict[str, object],
    check: str,
    listed: str,
    measured: str,
    reason: str,
) -> None:
    """Each kind of lying host fails exactly the check that catches it (others may only
    warn), showing the listed and the measured value and why."""
    target, _ = start_listing(server_id, delivers=lie)
    report = verify(target, CREDS, listing=snapshot_server(server_id), options=QUICK)
    found = report.check(check)
    assert found is not None
    assert ("fail", listed, measured) == (found.verdict, found.listed, found.measured)
    assert reason in found.reason
    assert [check] == [c.name for c in report.failed()]
    assert report.verdict == "fail"


def test_a_slightly_lowered_power_limit_and_a_slower_gpu_only_warn(
    start_listing: StartListing,
) -> None:
    """A power limit at 95.6 % of listed and half the expected throughput warn, not fail."""
    target, _ = start_listing(ONE_GPU, delivers={"power_limit": 430, "slow": 2.0})
    report = verify(target, CREDS, listing=snapshot_server(ONE_GPU), options=QUICK)
    assert not_ok(report) == {"power_limit": "warn", "throughput": "warn"}
    assert report.verdict == "warn"


def test_a_private_key_logs_in(start_listing: StartListing, tmp_path: Path) -> None:
    """An order made with a public key is verified with its private key file."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp_path / "id_ed25519"
    path.write_bytes(key.export_private_key())
    path.chmod(0o600)
    public = key.export_public_key().decode().strip()
    target, _ = start_listing(ONE_GPU, ssh_key=public)
    report = verify(
        target, Credentials(key_files=(path,)), listing=snapshot_server(ONE_GPU), options=QUICK
    )
    assert report.check("ssh").verdict == "ok"  # type: ignore[union-attr]
    assert not_ok(report) == {}


def test_a_refused_password_is_one_failed_ssh_check(start_listing: StartListing) -> None:
    """A wrong password gives a report with only the ssh check, failed, saying so."""
    target, _ = start_listing(ONE_GPU)
    report = verify(
        target, Credentials(password="Wrong1234"), listing=snapshot_server(ONE_GPU), options=QUICK
    )
    assert [c.name for c in report.checks] == ["ssh"]
    assert (report.verdict, report.reachable) == ("fail", False)
    assert "login refused" in report.checks[0].reason
    assert "Wrong1234" not in report.to_json()


def test_a_closed_port_is_refused(start_listing: StartListing, machines: Machines) -> None:
    """A machine whose SSH port refuses connections fails the ssh check at once."""
    target, _ = start_listing(ONE_GPU)
    assert target.order_id is not None
    machines.set_access_fault(target.order_id, "refuse")
    report = verify(target, CREDS, listing=snapshot_server(ONE_GPU), options=QUICK)
    assert report.verdict == "fail"
    assert f"connection refused at 127.0.0.1:{target.port}" == report.checks[0].reason


def test_a_silent_port_times_out_within_the_connect_timeout(
    start_listing: StartListing, machines: Machines
) -> None:
    """A machine that accepts but never greets is given up after ``connect_timeout``."""
    target, _ = start_listing(ONE_GPU)
    assert target.order_id is not None
    machines.set_access_fault(target.order_id, "delay", 30)
    options = VerifyOptions(load_seconds=1, disk_mb=0, connect_timeout=1.0)
    started = time.monotonic()
    report = verify(target, CREDS, listing=snapshot_server(ONE_GPU), options=options)
    assert time.monotonic() - started < 5.0
    assert report.verdict == "fail"
    assert "no SSH answer" in report.checks[0].reason


@pytest.mark.slow
def test_known_hosts_accepts_a_new_key_then_holds_to_it(
    start_listing: StartListing, tmp_path: Path
) -> None:
    """With a known_hosts file the first contact records the host key (0600) and a later
    contact with another key for that address fails the ssh check."""
    known = tmp_path / "known_hosts"
    options = VerifyOptions(load_seconds=1, disk_mb=0, known_hosts=known)
    target, _ = start_listing(ONE_GPU)
    first = verify(target, CREDS, listing=snapshot_server(ONE_GPU), options=options)
    assert first.check("ssh").verdict == "ok"  # type: ignore[union-attr]
    assert known.stat().st_mode & 0o777 == 0o600
    assert known.read_text().startswith(f"[127.0.0.1]:{target.port} ssh-ed25519 ")
    again = verify(target, CREDS, listing=snapshot_server(ONE_GPU), options=options)
    assert again.check("ssh").verdict == "ok"  # type: ignore[union-attr]
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    known.write_text(f"[127.0.0.1]:{target.port} {other}")
    changed = verify(target, CREDS, listing=snapshot_server(ONE_GPU), options=options)
    assert "does not match known_hosts" in changed.checks[0].reason


def test_without_load_the_link_is_read_at_its_maximum_and_throughput_skipped(
    start_listing: StartListing,
) -> None:
    """``load=False``: an idle card's link drops to gen 1, so the maximum is read (and
    said), and there is no throughput figure."""
    target, _ = start_listing(ONE_GPU)
    options = VerifyOptions(load=False, disk_mb=0)
    report = verify(target, CREDS, listing=snapshot_server(ONE_GPU), options=options)
    gen = report.check("pcie_gen")
    assert gen is not None
    assert (
        gen.verdict,
        gen.measured,
        gen.reason,
    ) == ("ok", "gen 4", "as listed (read idle: the maximum)")
    assert report.measured is not None and report.measured.gpus[0].pcie_gen_current == 1
    assert (
        report.check("throughput").verdict,  # type: ignore[union-attr]
        report.check("throughput").reason,  # type: ignore[union-attr]
    ) == ("skip", "skipped: no load was run")


async def test_averify_gives_the_same_report_from_async_code(
    start_listing: StartListing,
) -> None:
    """The coroutine verifies like the sync call (the agent server's way in)."""
    target, _ = start_listing(TWO_GPUS, delivers={"gpu_count": 1})
    report = await averify(target, CREDS, listing=snapshot_server(TWO_GPUS), options=QUICK)
    assert [c.name for c in report.failed()] == ["gpu_count"]


@pytest.mark.slow
def test_a_healthy_run_with_default_options_stays_well_inside_a_minute(
    start_listing: StartListing,
) -> None:
    """The default run (3 s of load, 128 MiB written) takes seconds, not minutes."""
    target, _ = start_listing(EIGHT_GPUS)
    started = time.monotonic()
    report = verify(target, CREDS, listing=snapshot_server(EIGHT_GPUS))
    elapsed = time.monotonic() - started
    assert not_ok(report) == {}
    assert elapsed < 15.0
    assert abs(report.seconds - elapsed) < 1.0


# A stand-in for PyTorch on the machine (the real one is gigabytes): it answers the calls
# the probe script's matmul makes, so the Python load path of the script is exercised end
# to end (detection, background run, output, parsing). Its figures mean nothing.
FAKE_TORCH = """
import time
class backends:
    class cuda:
        class matmul:
            allow_tf32 = True
class cuda:
    @staticmethod
    def is_available():
        return True
    @staticmethod
    def device_count():
        return 2
    @staticmethod
    def synchronize(device=None):
        time.sleep(0.01)
class _Tensor:
    def __matmul__(self, other):
        return self
def device(kind, index):
    return (kind, index)
def randn(*shape, device=None):
    return _Tensor()
"""


@pytest.mark.slow
async def test_the_python_matmul_load_is_found_run_and_read(start_listing: StartListing) -> None:
    """With ``torch`` importable on the rental the script runs its matmul on every GPU
    (not gpu_burn) and reads one figure per GPU, named as PyTorch's."""
    target, _ = start_listing(TWO_GPUS, env={"PYTHONPATH": "fake"})
    async with asyncssh.connect(
        target.host,
        target.port,
        username="root",
        password=PASSWORD,
        known_hosts=None,
        client_keys=None,
    ) as conn:
        await conn.run(
            "mkdir -p fake/torch && cat > fake/torch/__init__.py", input=FAKE_TORCH, check=True
        )
    report = await averify(target, CREDS, listing=snapshot_server(TWO_GPUS), options=QUICK)
    assert report.measured is not None and report.measured.throughput is not None
    load = report.measured.throughput
    assert (report.measured.loader, load.tool, sorted(load.gflops), load.errors) == (
        "python",
        "torch",
        [0, 1],
        {},
    )
    throughput = report.check("throughput")
    assert throughput is not None and throughput.measured is not None
    assert throughput.measured.endswith("(torch)")
