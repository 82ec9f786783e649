"""The verification report: ``Report``, its versioned JSON form, its table, its issue text.

JSON (``Report.to_json()``), schema version 1 (``SCHEMA_VERSION``; the JSON Schema is
``report_schema()``), keys always present::

    {"v": 1, "verdict": "ok|warn|fail", "order_id": 12 | null, "server_id": 34 | null,
     "owner": 56 | null, "host": "n1.example", "port": 12022,
     "started_at": 1700000000.0, "seconds": 4.2,
     "checks": [{"name": "gpu_count", "verdict": "ok|warn|fail|skip",
                 "listed": "2" | null, "measured": "2" | null,
                 "reason": "as listed", "hard": true}, ...],
     "measured": {...probes.Measured...} | null}

``checks`` come in ``checks.CHECK_NAMES`` order, ``ssh`` first; ``measured`` is null when
the machine could not be reached. A new check or key keeps version 1 (readers ignore
what they do not know); a change of meaning of an existing one makes version 2.

``table_rows``/``render_table`` give the CLI its table without printing anything;
``issue_text`` is what a cancel reports to the API (``cancel_order``'s ``issue``).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from clore._facts import MAX_ISSUE
from clore.rentals.verify.checks import Check, Verdict
from clore.rentals.verify.probes import Measured

__all__ = [
    "SCHEMA_VERSION",
    "TABLE_HEADER",
    "Report",
    "issue_text",
    "render_table",
    "report_schema",
    "table_rows",
]

SCHEMA_VERSION: Final = 1

#: The columns of ``table_rows``.
TABLE_HEADER: Final = ("check", "verdict", "listed", "measured", "reason")


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """One verification: the overall verdict, where and when, each check, the raw facts."""

    v: int = SCHEMA_VERSION
    verdict: Verdict
    order_id: int | None = None
    server_id: int | None = None
    owner: int | None = None
    host: str
    port: int
    started_at: float
    seconds: float
    checks: list[Check]
    measured: Measured | None = None

    @property
    def passed(self) -> bool:
        """True unless a check failed (warnings pass)."""
        return self.verdict != "fail"

    @property
    def reachable(self) -> bool:
        """True when SSH connected and the probes ran."""
        return self.measured is not None

    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.verdict == "fail"]

    def hard_failures(self) -> list[Check]:
        """The failed checks that mean the GPUs are not what was paid for."""
        return [c for c in self.checks if c.verdict == "fail" and c.hard]

    def check(self, name: str) -> Check | None:
        """The check called ``name``, if the report has it."""
        return next((c for c in self.checks if c.name == name), None)

    def to_builtins(self) -> dict[str, Any]:
        """The JSON object as Python values."""
        data: dict[str, Any] = msgspec.to_builtins(self, str_keys=True)
        return data

    def to_json(self, *, indent: int = 0) -> str:
        """The report as JSON (schema version ``v``), on one line unless ``indent``."""
        blob = msgspec.json.encode(self)
        if indent:
            blob = msgspec.json.format(blob, indent=indent)
        return blob.decode("utf-8")

    @classmethod
    def from_json(cls, data: str | bytes) -> Report:
        """Read a report written by ``to_json`` (a ``msgspec.ValidationError`` otherwise)."""
        return msgspec.json.decode(data, type=cls)


def report_schema() -> dict[str, Any]:
    """The JSON Schema of ``Report.to_json()``."""
    schema: dict[str, Any] = msgspec.json.schema(Report)
    return schema


def _cell(value: str | None) -> str:
    return "-" if value is None else value


def table_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """One row per check, in ``TABLE_HEADER`` order; unknown values are ``-``."""
    return [
        (c.name, c.verdict, _cell(c.listed), _cell(c.measured), c.reason) for c in report.checks
    ]


def render_table(report: Report, *, width: int | None = None) -> list[str]:
    """The table as plain lines (a header, a rule, one line per check, the verdict line);
    ``width`` cuts the reason column so no line is longer."""
    rows = [TABLE_HEADER, *table_rows(report)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines: list[str] = []
    for number, row in enumerate(rows):
        head = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4]))
        line = f"{head}  {row[4]}"
        if width is not None and len(line) > width:
            line = line[: max(len(head) + 2, width - 3)] + "..."
        lines.append(line.rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len("reason"))
    where = f"{report.host}:{report.port}"
    subject = f"order {report.order_id}" if report.order_id is not None else where
    lines.append(f"verdict: {report.verdict} ({subject}, {report.seconds:.1f} s)")
    return lines


def _finding(check: Check) -> str:
    parts = [f"{check.name} {check.verdict}:"]
    if check.listed is not None:
        parts.append(f"listed {check.listed},")
    if check.measured is not None:
        parts.append(f"measured {check.measured},")
    parts.append(check.reason)
    return " ".join(" ".join(parts).split())


def issue_text(report: Report, *, limit: int = MAX_ISSUE) -> str:
    """The findings, one line each (failures, then warnings), after a summary line, cut
    at a line boundary to at most ``limit`` characters (the API's ``issue`` limit)."""
    failed = [c for c in report.checks if c.verdict == "fail"]
    warned = [c for c in report.checks if c.verdict == "warn"]
    head = f"clore verify: {len(failed)} check(s) failed, {len(warned)} warned"
    lines = [head, *(_finding(c) for c in failed + warned)]
    text = lines[0][:limit]
    for line in lines[1:]:
        if len(text) + 1 + len(line) > limit:
            room = limit - len(text) - 1
            if room > 8 and not text.endswith("..."):
                text += "\n" + line[: room - 3] + "..."
            break
        text += "\n" + line
    return text
