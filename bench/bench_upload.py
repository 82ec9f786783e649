"""Upload of a 100 MB working directory: the job runner's ``Session.upload`` (one tar
stream over one exec) beside OpenSSH's ``scp -r`` of the same directory, to the same
sandbox machine, in the same run.

The directory is generated in a temporary directory: 2,000 source-like files of 1-60 KB
in 40 subdirectories (about 60 MB together) and 2 files of 20 MB (random bytes, so no
transport compression could help either side). A child process runs the sandbox
machine (``Machines``, bubblewrap when usable) so neither client shares an interpreter
with the SSH server; both log in with the same generated key. Each round removes the
previous copy, then times ``scp -r`` (from its start to its exit) and ``Session.upload``
(login included, as a job does it), alternating which goes first. Medians and the ratio
are printed; the goal is upload <= 1.2x scp (exit 1 when missed).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh

from clore.jobs.remote import Session
from clore.rentals.verify import Credentials, Target

ROUNDS = 5
GOAL = 1.2
SMALL_FILES = 2000
BIG_FILES = 2
BIG_BYTES = 20 * 1024 * 1024

#: The child: a Machines with one machine for the key on stdin; prints its SSH port,
#: runs until its stdin closes.
_MACHINE = """
import sys
from pathlib import Path
from clore.sandbox.machines import Machines, MachineSpec
public = sys.stdin.readline().strip()
with Machines(root=Path(sys.argv[1])) as machines:
    spec = MachineSpec(order_id=1, ssh_key=public, ports={22: "tcp"})
    endpoint = machines.start(spec)
    print(endpoint.ssh_port, machines.isolation_kind, flush=True)
    sys.stdin.read()
"""

_SSH_OPTIONS = [
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
]


def make_tree(root: Path) -> tuple[list[Path], int]:
    """The working directory: many small files and a few big ones; (files, bytes)."""
    rng = random.Random(12)
    files: list[Path] = []
    total = 0
    for i in range(SMALL_FILES):
        rel = Path(f"pkg{i % 40}") / f"module_{i}.py"
        size = rng.randint(1024, 60 * 1024)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rng.randbytes(size))
        files.append(rel)
        total += size
    for i in range(BIG_FILES):
        rel = Path(f"data/blob{i}.bin")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(os.urandom(BIG_BYTES))
        files.append(rel)
        total += BIG_BYTES
    return sorted(files), total


def ssh(key: Path, port: int, command: str) -> None:
    subprocess.run(
        ["ssh", *_SSH_OPTIONS, "-i", str(key), "-p", str(port), "root@127.0.0.1", command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=True,
    )


def time_scp(key: Path, port: int, tree: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        ["scp", *_SSH_OPTIONS, "-i", str(key), "-P", str(port), "-r", "-q", str(tree),
         "root@127.0.0.1:scp-copy"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"scp -r failed: {result.stderr.strip()}")
    return elapsed


async def _upload(target: Target, creds: Credentials, tree: Path, files: list[Path]) -> float:
    started = time.perf_counter()
    async with await Session.open(target, creds) as session:
        await session.upload(tree, files, "tar-copy")
    return time.perf_counter() - started


def time_upload(target: Target, creds: Credentials, tree: Path, files: list[Path]) -> float:
    return asyncio.run(_upload(target, creds, tree, files))


def main() -> int:
    for tool in ("ssh", "scp"):
        if shutil.which(tool) is None:
            print(f"OpenSSH's {tool} is not installed: nothing to compare with", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        tree = base / "workdir"
        files, total = make_tree(tree)
        key = asyncssh.generate_private_key("ssh-ed25519")
        key_path = base / "id_ed25519"
        key_path.write_bytes(key.export_private_key())
        key_path.chmod(0o600)
        child = subprocess.Popen(
            [sys.executable, "-c", _MACHINE, str(base / "machines")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(key.export_public_key().decode().strip() + "\n")
            child.stdin.flush()
            port_text, isolation = child.stdout.readline().split()
            port = int(port_text)
            target = Target("127.0.0.1", port, 1)
            creds = Credentials(key_files=(key_path,))
            print(
                f"{len(files)} files, {total / 1e6:.1f} MB; isolation: {isolation}; "
                f"{ROUNDS} rounds, medians"
            )
            ssh(key_path, port, "true")  # the first login waits for the boot
            scp_times: list[float] = []
            upload_times: list[float] = []
            for i in range(ROUNDS):
                ssh(key_path, port, "rm -rf scp-copy tar-copy")
                if i % 2:
                    upload_times.append(time_upload(target, creds, tree, files))
                    scp_times.append(time_scp(key_path, port, tree))
                else:
                    scp_times.append(time_scp(key_path, port, tree))
                    upload_times.append(time_upload(target, creds, tree, files))
        finally:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=30)
    scp_s = statistics.median(scp_times)
    up_s = statistics.median(upload_times)
    ratio = up_s / scp_s
    print(f"scp -r          {scp_s:7.3f} s  ({total / 1e6 / scp_s:6.1f} MB/s)")
    print(f"Session.upload  {up_s:7.3f} s  ({total / 1e6 / up_s:6.1f} MB/s)")
    print(f"ratio upload/scp: {ratio:.2f}x (goal <= {GOAL}x)")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
