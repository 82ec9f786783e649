"""The report's JSON (versioned, round-tripping, with its schema), its table and the issue
text a cancel sends."""

from __future__ import annotations

import json

from clore._facts import MAX_ISSUE
from clore.rentals.verify import (
    SCHEMA_VERSION,
    TABLE_HEADER,
    Check,
    Report,
    issue_text,
    render_table,
    report_schema,
    table_rows,
)


def check(name: str, verdict: str, reason: str = "why", hard: bool = False) -> Check:
    return Check(
        name=name,
        verdict=verdict,  # type: ignore[arg-type]
        listed="2",
        measured="1",
        reason=reason,
        hard=hard,
    )


def report(*checks: Check, verdict: str = "fail") -> Report:
    return Report(
        verdict=verdict,  # type: ignore[arg-type]
        order_id=12,
        server_id=25718,
        owner=9662,
        host="127.0.0.1",
        port=40022,
        started_at=1700000000.0,
        seconds=3.25,
        checks=list(checks),
    )


def test_json_has_every_key_of_version_1_and_reads_back() -> None:
    """``to_json`` writes the documented keys with ``v`` 1; ``from_json`` reads it back."""
    made = report(check("ssh", "ok"), check("gpu_count", "fail", "1 fewer than listed", True))
    data = json.loads(made.to_json())
    assert sorted(data) == sorted(
        [
            "v",
            "verdict",
            "order_id",
            "server_id",
            "owner",
            "host",
            "port",
            "started_at",
            "seconds",
            "checks",
            "measured",
        ]
    )
    assert (data["v"], data["measured"], data["checks"][1]) == (
        SCHEMA_VERSION,
        None,
        {
            "name": "gpu_count",
            "verdict": "fail",
            "listed": "2",
            "measured": "1",
            "reason": "1 fewer than listed",
            "hard": True,
        },
    )
    assert Report.from_json(made.to_json(indent=2)) == made


def test_the_schema_describes_the_report() -> None:
    """``report_schema`` is a JSON Schema naming the report's required keys."""
    schema = report_schema()
    definitions = schema["$defs"]
    assert {"verdict", "host", "port", "started_at", "seconds", "checks"} <= set(
        definitions["Report"]["required"]
    )
    assert set(definitions["Check"]["properties"]) == {
        "name",
        "verdict",
        "listed",
        "measured",
        "reason",
        "hard",
    }


def test_table_rows_follow_the_header_and_show_unknowns_as_a_dash() -> None:
    """One row per check, columns as ``TABLE_HEADER``; None is ``-``."""
    made = report(Check(name="ssh", verdict="ok", listed=None, measured="root@h:1", reason="in"))
    assert TABLE_HEADER == ("check", "verdict", "listed", "measured", "reason")
    assert table_rows(made) == [("ssh", "ok", "-", "root@h:1", "in")]


def test_the_rendered_table_ends_with_the_verdict_and_respects_a_width() -> None:
    """Plain lines, the verdict last; ``width`` cuts long reasons."""
    made = report(check("gpu_health", "fail", "x" * 200, True))
    lines = render_table(made, width=60)
    assert lines[0].split() == list(TABLE_HEADER)
    assert lines[-1] == "verdict: fail (order 12, 3.2 s)"
    assert max(len(line) for line in lines[:-1]) <= 60


def test_issue_text_lists_failures_then_warnings_one_line_each() -> None:
    """The summary, each failure, each warning: what the cancel reports to the API."""
    made = report(
        check("ssh", "ok"),
        check("gpu_count", "fail", "1 fewer than listed", True),
        check("disk_write", "warn", "12% of listed"),
        check("power_limit", "fail", "GPU 0: 300 W of 450 W listed (67%)"),
    )
    assert issue_text(made).splitlines() == [
        "clore verify: 2 check(s) failed, 1 warned",
        "gpu_count fail: listed 2, measured 1, 1 fewer than listed",
        "power_limit fail: listed 2, measured 1, GPU 0: 300 W of 450 W listed (67%)",
        "disk_write warn: listed 2, measured 1, 12% of listed",
    ]


def test_issue_text_is_capped_to_the_apis_limit_at_a_line_boundary() -> None:
    """However many findings, the text fits ``cancel_order``'s issue field."""
    many = [check(f"check_{i}", "fail", "r" * 150) for i in range(40)]
    text = issue_text(report(*many))
    assert len(text) <= MAX_ISSUE
    assert text.startswith("clore verify: 40 check(s) failed")
    assert all(line.startswith(("clore verify", "check_")) for line in text.splitlines())
    assert len(issue_text(report(*many), limit=300)) <= 300
