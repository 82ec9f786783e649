"""clore.sandbox.machines: a small machine per running sandbox order that users really
reach — an SSH server (asyncssh) with exec, shells, SFTP/scp and ``ssh -L``, the
order's command and its log, relays for forwarded tcp and http ports, and a simulated
GPU host (``nvidia-smi``, ``nproc``, ``/proc/meminfo``, ``gpu_burn``) that reports the
listing's hardware or what a lying host delivers instead.

```python
from clore.sandbox.machines import Machines, MachineSpec

with Machines() as machines:                     # a temporary root, bubblewrap if usable
    spec = MachineSpec.from_server(order_id, server_record, ssh_password="secret",
                                   ports={"22": "tcp", "8888": "http"})
    endpoint = machines.start(spec)              # endpoint.ssh_port, .tcp_ports, .http_url
    machines.set_access_fault(order_id, "refuse")
    machines.logs(order_id); machines.stop(order_id)
```

Modules: ``spec`` (MachineSpec, Delivers, Endpoint), ``hardware`` (what the machine
reports), ``layout`` (its files), ``isolation`` (bubblewrap), ``procs`` (its processes),
``runtime`` (one machine's state), ``sshd``/``session``/``sftp`` (SSH), ``relay``
(ports), ``manager`` (Machines), ``shims/`` (the simulated tools). Importing this package
does not import asyncssh; ``Machines`` does, when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clore.sandbox.machines.spec import PORT_KINDS, Delivers, Endpoint, MachineSpec, PortKind

if TYPE_CHECKING:
    from clore.sandbox.machines.manager import (
        ACCESS_FAULTS,
        AccessFault,
        Machines,
        UnknownMachineError,
    )

__all__ = [
    "ACCESS_FAULTS",
    "PORT_KINDS",
    "AccessFault",
    "Delivers",
    "Endpoint",
    "MachineSpec",
    "Machines",
    "PortKind",
    "UnknownMachineError",
]


def __getattr__(name: str) -> Any:
    if name in ("ACCESS_FAULTS", "AccessFault", "Machines", "UnknownMachineError"):
        from clore.sandbox.machines import manager

        return getattr(manager, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
