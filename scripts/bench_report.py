"""One row per workload, the targets of issue 6, and the table and JSON the benchmark prints."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGET_W1_RPS = 4000.0
TARGET_W2_RPS = 2000.0
TARGET_W3_CHATS = 4000.0
TARGET_WORKERS_RATIO = 1.6
"""Chats/s with 2 workers over 1 (issue 12)."""
TARGET_IDLE_MIB = 50.0
TARGET_KIB_PER_CONVERSATION = 8.0
TARGET_SLOW_FRACTION = 0.97

GO_ORIGINAL = {
    "W1": "5344 req/s, p99 16.5 ms",
    "W2": "1827 req/s",
    "W3": "5399 chats/s",
    "W4": "17.6 MiB idle, 132 MiB after 10,000 conversations (11.7 KiB/conv)",
    "slow": "619 of 640 req/s (96.7 %)",
}
"""The Go original on the same kind of machine, as issue 6 reports it."""


@dataclass
class Row:
    workload: str
    description: str
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None
    rss_mib: float | None = None
    cpu_pct: float | None = None
    target: str = "info"
    measured: str = ""
    passed: bool | None = None
    """None: informational, no target."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def at_least(value: float, target: float, errors: int) -> bool:
    return value >= target and errors == 0


def verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "-"}[passed]


def _num(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:,.{digits}f}"


HEADERS = (
    "workload",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "RSS MiB",
    "CPU %",
    "target",
    "measured",
    "result",
)


def table(rows: Sequence[Row]) -> str:
    """A plain-text table, one line per workload, columns padded to fit."""
    cells = [
        (
            r.workload,
            _num(r.rps, 0),
            _num(r.p50_ms, 2),
            _num(r.p99_ms, 2),
            _num(r.errors),
            _num(r.rss_mib),
            _num(r.cpu_pct, 0),
            r.target,
            r.measured,
            verdict(r.passed),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]
    right = {1, 2, 3, 4, 5, 6}

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        )

    out = [line(HEADERS), line(["-" * w for w in widths])]
    out.extend(line(c) for c in cells)
    return "\n".join(out)


def document(rows: Sequence[Row], meta: dict[str, Any]) -> dict[str, Any]:
    decided = [r.passed for r in rows if r.passed is not None]
    return {
        "meta": meta,
        "all_passed": bool(decided) and all(decided),
        "go_original": GO_ORIGINAL,
        "results": [r.to_json() for r in rows],
    }


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)
