"""Reading probe output as real tools print it, and the checks' verdicts on what it says:
failures a sandbox machine cannot show (a dead driver, a lost GPU, busybox dd, PyTorch)."""

from __future__ import annotations

import json
from dataclasses import replace

import msgspec
import pytest
from verify_support import EIGHT_GPUS, ONE_GPU, snapshot_server

import clore
from clore.rentals.verify import (
    Check,
    Credentials,
    Listing,
    Measured,
    Target,
    TargetError,
    evaluate,
    overall,
    parse,
    target_of,
)

HEADER = (
    "+-----------------------------------------------------------------------------------------+\n"
    "| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |\n"
)


def section(name: str, text: str, rc: int | None = 0) -> str:
    end = "" if rc is None else f"\n@@clore-verify end {name} {rc}@@\n"
    return f"@@clore-verify begin {name}@@\n{text}{end}"


def row(index: int, name: str = "NVIDIA GeForce RTX 4090", **fields: str) -> str:
    values = {
        "memory": "24564",
        "power": "450.00",
        "gen_max": "4",
        "gen_now": "4",
        "width_max": "16",
        "width_now": "16",
        "driver": "550.54.15",
        "util": "100",
    }
    values.update(fields)
    return ", ".join([str(index), name, *values.values()])


def output(
    *rows: str,
    smi: tuple[str, int] = (HEADER, 0),
    loaded: bool = True,
    loader: str = "gpu_burn",
    load: str | None = None,
    disk: str = "skipped",
    threads: str = "24",
    memtotal_kb: int = 32746000,
) -> str:
    parts = [
        section("smi", smi[0], smi[1]),
        section("nproc", threads),
        section("meminfo", f"MemTotal:       {memtotal_kb} kB\nMemFree:  1 kB"),
        section("loader", loader),
        section("gpu", "\n".join([*rows, f"loaded {int(loaded)}"])),
        section("disk", disk),
    ]
    if load is not None:
        parts.append(section("load", load))
    return "".join(parts)


def listing(**fields: object) -> Listing:
    """The 1x RTX 4090 listing of the capture, with ``fields`` changed."""
    return replace(Listing.of(snapshot_server(ONE_GPU)), **fields)  # type: ignore[arg-type]


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_listing_reads_a_server_an_order_and_a_raw_record_alike() -> None:
    """The listing of a captured record is the same from the dict and from the Server."""
    record = snapshot_server(EIGHT_GPUS)
    server = msgspec.json.decode(json.dumps(record), type=clore.Server)
    from_dict, from_server = Listing.of(record), Listing.of(server)
    assert from_dict == from_server
    assert (
        from_dict.server_id,
        from_dict.owner,
        from_dict.gpu,
        from_dict.gpu_count,
        from_dict.gpuram,
        from_dict.pl,
        from_dict.pcie_rev,
        from_dict.pcie_width,
        from_dict.cuda_version,
        from_dict.cpu_threads,
        from_dict.ram,
        from_dict.disk_speed,
    ) == (
        EIGHT_GPUS,
        2097,
        "NVIDIA GeForce RTX 3090",
        8,
        24.0,
        (250.0, 265.0, 265.0, 255.0, 250.0, 260.0, 255.0, 250.0),
        2,
        1,
        "12.4",
        16,
        15.9378,
        408.94,
    )


def test_a_dead_driver_fails_health_and_count_and_skips_what_it_cannot_read() -> None:
    """nvidia-smi exiting 9 (no driver) fails gpu_health with its own words and gpu_count."""
    dead = (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        "Make sure that the latest NVIDIA driver is installed and running.\n"
    )
    text = output(smi=(dead, 9), loader="none")
    measured = parse(text.replace("@@clore-verify end gpu 0@@", "@@clore-verify end gpu 9@@"))
    checks = by_name(evaluate(listing(), measured))
    assert checks["gpu_health"].verdict == "fail"
    assert checks["gpu_health"].reason.startswith(
        "nvidia-smi exited 9: NVIDIA-SMI has failed because it couldn't communicate"
    )
    assert (checks["gpu_count"].verdict, checks["gpu_count"].measured) == ("fail", "none readable")
    assert (checks["cuda"].verdict, checks["gpu_model"].verdict) == ("skip", "skip")


def test_a_missing_nvidia_smi_is_named() -> None:
    """Exit 127 (not found) reads as nvidia-smi not installed."""
    measured = parse(output(smi=("sh: 1: nvidia-smi: not found", 127), loader="none"))
    assert (
        "nvidia-smi is not installed" in by_name(evaluate(listing(), measured))["gpu_health"].reason
    )


def test_a_lost_gpu_field_is_unreadable_and_fails_health() -> None:
    """``[GPU is lost]`` in a reading is an error, unlike ``[N/A]``."""
    measured = parse(output(row(0, power="[N/A]", util="[GPU is lost]"), loader="none"))
    assert measured.gpus[0].unreadable == ["utilization.gpu"]
    checks = by_name(evaluate(listing(), measured))
    assert checks["gpu_health"].reason == "GPU 0: utilization.gpu unreadable"
    assert (checks["power_limit"].verdict, checks["power_limit"].reason) == (
        "warn",
        "GPU 0 report no limit",
    )


def test_a_card_without_a_listed_limit_skips_the_power_check() -> None:
    """A laptop part lists ``pl: [0]`` and reports ``[N/A]``: nothing to compare."""
    measured = parse(output(row(0, power="[N/A]")))
    check = by_name(evaluate(listing(pl=(0.0,)), measured))["power_limit"]
    assert (check.verdict, check.listed) == ("skip", None)


def test_a_link_slower_under_load_than_its_maximum_fails_on_the_current_figure() -> None:
    """Under load the current generation is the link's truth (a riser trained at gen 3)."""
    measured = parse(output(row(0, gen_now="3")))
    check = by_name(evaluate(listing(), measured))["pcie_gen"]
    assert (check.verdict, check.measured, check.reason) == (
        "fail",
        "gen 3",
        "GPU 0 at gen 3 (under load), listed gen 4",
    )


def test_an_idle_reading_uses_the_maximum() -> None:
    """Read idle (no load shown), gen 1 current is ignored and the maximum compared."""
    measured = parse(output(row(0, gen_now="1", util="0"), loaded=False, loader="none"))
    check = by_name(evaluate(listing(), measured))["pcie_gen"]
    assert (check.verdict, check.measured) == ("ok", "gen 4")


def test_more_gpus_than_listed_warn() -> None:
    """An extra GPU is not what was listed, but not less than paid for."""
    measured = parse(output(row(0), row(1)))
    assert by_name(evaluate(listing(), measured))["gpu_count"].verdict == "warn"


@pytest.mark.parametrize(
    ("listed", "name", "verdict"),
    [
        ("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090", "ok"),
        ("GeForce RTX 4090", "NVIDIA GeForce RTX 4090", "ok"),
        ("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090 D", "fail"),
        ("NVIDIA GeForce RTX 3060", "NVIDIA GeForce RTX 3060 Laptop GPU", "fail"),
        ("NVIDIA A100", "NVIDIA A100-SXM4-80GB", "ok"),
        ("NVIDIA A100 80GB", "NVIDIA A100-SXM4-40GB", "fail"),
    ],
)
def test_models_match_exactly_with_qualifiers_the_listing_leaves_open(
    listed: str, name: str, verdict: str
) -> None:
    """A measured model must be the listed one; it may add qualifiers the listing omits."""
    measured = parse(output(row(0, name=name)))
    assert by_name(evaluate(listing(gpu=listed), measured))["gpu_model"].verdict == verdict


@pytest.mark.parametrize(
    ("listed", "verdict"), [("12.2", "ok"), ("12.4", "ok"), ("12.5", "fail"), ("11.8", "ok")]
)
def test_cuda_compares_as_a_version(listed: str, verdict: str) -> None:
    """CUDA 12.4 on the rental satisfies 12.2 and 12.4, not 12.5."""
    measured = parse(output(row(0)))
    check = by_name(evaluate(listing(cuda_version=listed), measured))["cuda"]
    assert (check.verdict, check.measured) == (verdict, "12.4 (driver 550.54.15)")


def test_fewer_threads_and_less_ram_fail() -> None:
    """nproc under the listed threads and MemTotal under 90 % of the RAM fail."""
    measured = parse(output(row(0), threads="12", memtotal_kb=16 * 1024 * 1024))
    checks = by_name(evaluate(listing(), measured))
    assert (checks["cpu_threads"].verdict, checks["cpu_threads"].reason) == (
        "fail",
        "12 fewer than listed",
    )
    assert (checks["ram"].verdict, checks["ram"].measured) == ("fail", "16.0 GB")


def test_pytorch_matmul_figures_are_read_and_compared() -> None:
    """The Python load's ``matmul`` lines give the throughput, named as PyTorch's."""
    load = "lib torch\nmatmul 0 61234\nmatmul 1 20000\n"
    measured = parse(output(row(0), row(1), loader="python", load=load))
    assert measured.throughput is not None
    assert (measured.throughput.tool, measured.throughput.gflops) == (
        "torch",
        {0: 61234.0, 1: 20000.0},
    )
    check = by_name(evaluate(listing(gpu_count=2), measured))["throughput"]
    assert (check.verdict, check.listed, check.measured, check.reason) == (
        "fail",
        "82.6 TFLOPS peak FP32",
        "20.0-61.2 TFLOPS (torch)",
        "GPU 1: 20.0 TFLOPS, 24% of peak (< 30%); GPU 1 under 70% of the fastest",
    )


def test_a_matmul_error_on_one_gpu_fails_health() -> None:
    """A GPU the matmul could not use is a health failure with the library's words."""
    load = "lib torch\nmatmul 0 61234\nmatmul 1 error CUDA error: an illegal memory access\n"
    measured = parse(output(row(0), row(1), loader="python", load=load))
    checks = by_name(evaluate(listing(gpu_count=2), measured))
    assert checks["gpu_health"].reason == "torch: GPU 1: CUDA error: an illegal memory access"
    assert "no figure for GPU 1" in checks["throughput"].reason


def test_one_gpu_far_slower_than_the_others_warns() -> None:
    """A GPU under 70 % of the fastest warns even when every GPU is above the floor."""
    load = "lib cupy\nmatmul 0 60000\nmatmul 1 40000\n"
    measured = parse(output(row(0), row(1), loader="python", load=load))
    check = by_name(evaluate(listing(gpu_count=2), measured))["throughput"]
    assert (check.verdict, check.reason) == ("warn", "GPU 1 under 70% of the fastest")


def test_a_model_without_a_reference_figure_is_measured_but_not_judged() -> None:
    """A Quadro P620 has no reference figure: the throughput is shown, skipped."""
    load = "lib torch\nmatmul 0 1234\n"
    measured = parse(output(row(0, name="Quadro P620"), loader="python", load=load))
    check = by_name(evaluate(listing(gpu="Quadro P620"), measured))["throughput"]
    assert (check.verdict, check.measured, check.reason) == (
        "skip",
        "1.2 TFLOPS (torch)",
        "no reference figure for Quadro P620",
    )


@pytest.mark.parametrize(
    ("text", "mb_s"),
    [
        (
            "path /root\n128+0 records in\n128+0 records out\n"
            "134217728 bytes (134 MB, 128 MiB) copied, 0.5 s, 268 MB/s\nrc 0",
            268.4,
        ),
        (
            "path /root\n64+0 records in\n64+0 records out\n"
            "67108864 bytes (64.0MB) copied, 0.250000 seconds, 256.0MB/s\nrc 0",
            268.4,
        ),
    ],
)
def test_gnu_and_busybox_dd_are_read(text: str, mb_s: float) -> None:
    """Both dd dialects give bytes and seconds; MB/s is computed, 10^6 bytes a MB."""
    measured = parse(output(row(0), disk=text))
    assert measured.disk is not None and measured.disk.mb_s is not None
    assert round(measured.disk.mb_s, 1) == mb_s


def test_a_disk_test_that_times_out_warns_and_never_fails() -> None:
    """dd killed by its timeout (124) is a warning, as every disk figure is."""
    measured = parse(output(row(0), disk="path /root\nrc 124"))
    check = by_name(evaluate(listing(), measured))["disk_write"]
    assert (check.verdict, check.reason) == ("warn", "dd gave no figure: timed out after 30 s")


def test_output_cut_short_keeps_what_was_measured() -> None:
    """A run cut off mid-way (timeout) still reads the sections that ended."""
    text = section("smi", HEADER) + section("nproc", "24") + section("gpu", row(0), rc=None)
    measured = parse(text)
    assert (measured.cuda_version, measured.cpu_threads, measured.query_exit) == ("12.4", 24, None)
    assert measured.gpus == []


def test_overall_is_the_worst_verdict_and_skips_do_not_count() -> None:
    """fail beats warn beats ok; a report of skips only is ok."""

    def c(verdict: str) -> Check:
        return Check(name="x", verdict=verdict, listed=None, measured=None, reason="")  # type: ignore[arg-type]

    assert [
        overall([c("ok"), c("warn"), c("fail")]),
        overall([c("ok"), c("skip"), c("warn")]),
        overall([c("skip")]),
    ] == ["fail", "warn", "ok"]


def test_measured_survives_json() -> None:
    """The facts round-trip through JSON (GPU-indexed figures keep integer keys)."""
    load = "lib torch\nmatmul 0 61234\n"
    measured = parse(output(row(0), loader="python", load=load))
    again = msgspec.json.decode(msgspec.json.encode(measured), type=Measured)
    assert again == measured


def test_an_order_is_reached_at_its_host_and_the_public_port_of_22() -> None:
    """``target_of`` reads pub_cluster and tcp_ports; an order without them is refused."""
    ready = clore.Order(id=5, pub_cluster=["n1.example"], tcp_ports=["8888:30001", "22:30000"])
    assert target_of(ready) == Target("n1.example", 30000, 5)
    with pytest.raises(TargetError, match="order 5 has no host yet"):
        target_of(clore.Order(id=5))
    with pytest.raises(TargetError, match="forwards no SSH port"):
        target_of(clore.Order(id=5, pub_cluster=["n1.example"], tcp_ports=["8888:30001"]))


def test_credentials_need_a_secret_and_never_show_it() -> None:
    """A login needs a password, a key or the agent; the password is not in the repr."""
    with pytest.raises(ValueError, match="ssh password, a private key file, or agent"):
        Credentials()
    assert "Secret123" not in repr(Credentials(password="Secret123"))
