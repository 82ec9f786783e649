"""Verification of a rented machine against its listing, for every face (the CLI's
``clore verify`` and ``rent --verify``, the job runner, the agent server).

```python
from clore.rentals.verify import Credentials, verify, verify_and_settle, BadHosts

report = verify(order, Credentials(password="..."))    # over SSH, against order's listing
print("\\n".join(render_table(report))); report.to_json()
settled = verify_and_settle(client, order, creds, created_by_us=True, bad_hosts=BadHosts())
if settled.move_on: ...                                # cancelled in the free window
```

Modules:

- ``listing``: ``Listing``, what a server's listing promises (from a Server, an Order, a
  raw record).
- ``script``: the probe script (one ``sh`` program, one SSH exec) and its options.
- ``ssh``: ``Credentials``, ``Target``/``target_of``, one asyncssh connection per run.
- ``probes``: ``Measured`` and ``parse`` (the script's output read into typed facts).
- ``checks``: ``evaluate`` (each check ok / warn / fail / skip, thresholds in its
  docstring), ``overall``; ``expected``: reference FP32 figures per model.
- ``report``: ``Report`` (JSON schema version 1), ``table_rows``/``render_table``,
  ``issue_text``.
- ``runner``: ``verify``/``averify``, ``VerifyOptions``.
- ``badhosts``: the local list of bad servers and owners.
- ``settle``: acting inside the free 600 s window (``decide``, ``settle``,
  ``verify_and_settle``, their async twins).

Importing this package does not import asyncssh (a verification does).
"""

from __future__ import annotations

from clore.rentals.verify.badhosts import (
    BAD_HOSTS_FILE,
    OWNER_STRIKES,
    BadHost,
    BadHostList,
    BadHosts,
    BadHostsFileError,
    BadReason,
    add_bad_host,
    bad_hosts_path,
    forget_bad_host,
    is_bad,
    list_bad_hosts,
)
from clore.rentals.verify.checks import CHECK_NAMES, HARD_CHECKS, Check, Verdict, evaluate, overall
from clore.rentals.verify.expected import peak_fp32_gflops
from clore.rentals.verify.listing import Listing
from clore.rentals.verify.probes import Disk, GpuReading, Measured, Throughput, parse
from clore.rentals.verify.report import (
    SCHEMA_VERSION,
    TABLE_HEADER,
    Report,
    issue_text,
    render_table,
    report_schema,
    table_rows,
)
from clore.rentals.verify.runner import VerifyOptions, averify, verify
from clore.rentals.verify.settle import (
    CANCEL_MARGIN,
    FREE_WINDOW,
    Decision,
    Outcome,
    Settlement,
    acancel_failed,
    asettle,
    averify_and_settle,
    cancel_failed,
    cancel_when_asked,
    decide,
    settle,
    verify_and_settle,
)
from clore.rentals.verify.ssh import Credentials, Target, TargetError, target_of

__all__ = [
    "BAD_HOSTS_FILE",
    "CANCEL_MARGIN",
    "CHECK_NAMES",
    "FREE_WINDOW",
    "HARD_CHECKS",
    "OWNER_STRIKES",
    "SCHEMA_VERSION",
    "TABLE_HEADER",
    "BadHost",
    "BadHostList",
    "BadHosts",
    "BadHostsFileError",
    "BadReason",
    "Check",
    "Credentials",
    "Decision",
    "Disk",
    "GpuReading",
    "Listing",
    "Measured",
    "Outcome",
    "Report",
    "Settlement",
    "Target",
    "TargetError",
    "Throughput",
    "Verdict",
    "VerifyOptions",
    "acancel_failed",
    "add_bad_host",
    "asettle",
    "averify",
    "averify_and_settle",
    "bad_hosts_path",
    "cancel_failed",
    "cancel_when_asked",
    "decide",
    "evaluate",
    "forget_bad_host",
    "is_bad",
    "issue_text",
    "list_bad_hosts",
    "overall",
    "parse",
    "peak_fp32_gflops",
    "render_table",
    "report_schema",
    "settle",
    "table_rows",
    "target_of",
    "verify",
    "verify_and_settle",
]
