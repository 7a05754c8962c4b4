"""Running wrk with the bench Lua scripts, and reading what it printed.

The Lua scripts print one ``BENCH_RESULT {json}`` line from ``done()`` with the counts of checked
answers; wrk's own text (``Requests/sec``, ``--latency`` percentiles, socket errors) is parsed too,
as a cross-check and as the fallback when a script printed nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).resolve().parent / "bench_lua"
RESULT_PREFIX = "BENCH_RESULT "
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
"""wrk's time units, in milliseconds."""
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


class WrkError(Exception):
    """wrk failed or printed nothing usable; the message has its output."""


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    mean_ms: float | None = None
    socket_errors: dict[str, int] = field(default_factory=dict)
    ok: int | None = None
    """Answers the script checked and found right (None without a BENCH_RESULT line)."""
    bad: int = 0
    """Answers with a wrong status or body."""
    first_bad: str = ""
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Wrong answers plus socket errors and timeouts (a non-2xx status is already in ``bad``)."""
        socket = sum(v for k, v in self.socket_errors.items() if k != "status")
        status = self.socket_errors.get("status", 0) if self.ok is None else 0
        return self.bad + socket + status

    def per_second(self, counter: str) -> float:
        return self.counters.get(counter, 0) / self.duration_s if self.duration_s > 0 else 0.0


def to_ms(text: str) -> float:
    """``512.00us`` / ``1.23ms`` / ``2.00s`` / ``1.00m`` → milliseconds."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(us|ms|s|m|h)\s*", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_result_line(output: str) -> dict[str, Any] | None:
    """The JSON of the last ``BENCH_RESULT`` line, or None."""
    found = None
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            found = json.loads(line[len(RESULT_PREFIX) :])
    return found


def parse_wrk_text(output: str) -> dict[str, Any]:
    """What wrk itself printed: requests, duration_s, rps, percentiles (ms), socket errors, non-2xx."""
    parsed: dict[str, Any] = {"percentiles": {}, "socket_errors": dict.fromkeys(ERROR_KINDS, 0)}
    if m := re.search(r"^\s*(\d+) requests in ([0-9.]+(?:us|ms|s|m|h))", output, re.M):
        parsed["requests"] = int(m.group(1))
        parsed["duration_s"] = to_ms(m.group(2)) / 1000
    if m := re.search(r"^Requests/sec:\s*([0-9.]+)", output, re.M):
        parsed["rps"] = float(m.group(1))
    if "Latency Distribution" in output:
        block = output.split("Latency Distribution", 1)[1]
        for pct, value in re.findall(r"^\s+(\d+)%\s+([0-9.]+(?:us|ms|s|m|h))\s*$", block, re.M):
            parsed["percentiles"][int(pct)] = to_ms(value)
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        for kind, count in zip(("connect", "read", "write", "timeout"), m.groups(), strict=True):
            parsed["socket_errors"][kind] = int(count)
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        parsed["socket_errors"]["status"] = int(m.group(1))
    return parsed


def parse_output(output: str) -> WrkResult:
    """One result from a wrk run's stdout, preferring the script's ``BENCH_RESULT`` line."""
    text = parse_wrk_text(output)
    line = parse_result_line(output)
    if line is None:
        if "requests" not in text:
            raise WrkError(f"wrk printed no result:\n{output[-2000:]}")
        pct = text["percentiles"]
        return WrkResult(
            requests=text["requests"],
            duration_s=text["duration_s"],
            rps=text.get("rps", 0.0),
            p50_ms=pct.get(50),
            p99_ms=pct.get(99),
            socket_errors=text["socket_errors"],
        )
    duration = line["duration_us"] / 1e6
    known = {"requests", "duration_us", "bytes", "errors", "ok", "bad", "first_bad"}
    return WrkResult(
        requests=line["requests"],
        duration_s=duration,
        rps=line["requests"] / duration if duration > 0 else 0.0,
        p50_ms=line["p50_us"] / 1000,
        p99_ms=line["p99_us"] / 1000,
        mean_ms=line["mean_us"] / 1000,
        socket_errors={k: int(line["errors"].get(k, 0)) for k in ERROR_KINDS},
        ok=line["ok"],
        bad=line["bad"],
        first_bad=line.get("first_bad", ""),
        counters={
            k: v for k, v in line.items() if isinstance(v, int) and k not in known and not k.endswith("_us")
        },
    )


@dataclass(frozen=True, slots=True)
class WrkRun:
    url: str
    script: str
    args: Sequence[str] = ()
    connections: int = 64
    threads: int = 1
    duration: float = 10.0
    timeout: float = 5.0
    cpu: int | str = 0
    """A core, or a taskset list ("0,1")."""

    def argv(self) -> list[str]:
        return [
            "taskset",
            "-c",
            str(self.cpu),
            "wrk",
            "--latency",
            "-t",
            str(self.threads),
            "-c",
            str(self.connections),
            "-d",
            f"{max(1, round(self.duration))}s",
            "--timeout",
            f"{max(1, round(self.timeout))}s",
            "-s",
            str(LUA_DIR / self.script),
            self.url,
            "--",
            *self.args,
        ]


def run_wrk(run: WrkRun) -> tuple[WrkResult, str]:
    """Run wrk (bounded by its own duration plus a margin) and parse it; (result, raw output)."""
    env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR)}
    try:
        done = subprocess.run(
            run.argv(),
            capture_output=True,
            text=True,
            env=env,
            timeout=run.duration + run.timeout + 30,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish in time: {' '.join(run.argv())}") from exc
    output = done.stdout + ("\n" + done.stderr if done.stderr else "")
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}:\n{output[-2000:]}")
    return parse_output(done.stdout), output
