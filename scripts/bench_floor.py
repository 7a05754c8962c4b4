"""The floor: what the fixed stack alone (aiohttp server + aiohttp ClientSession + uvloop + orjson)
does on this machine, with no alice_py code, measured exactly as scripts/bench measures the service.

    .venv/bin/python scripts/bench_floor.py [--quick] [--only noup,W1,W2,W2T,streams,slow]

The "service" is the bare relay of ``scripts/bench_floor_app.py``, started fresh per case on the
service core against the same nginx; W1, W2, slow and streams are bench_workloads' own functions
(same Lua checks, warm-up, connections, stream client). Two more cases: ``noup``, the server alone
(a JSON request answered without an upstream call), and ``W2T``, W2 with its 20 chunks 20 ms apart
and 256 connections: each chunk its own read and write, the cost per chunk. For each: req/s,
p50/p99 and the relay's CPU time per request (``/proc/<pid>/stat`` around the measured run, after
the warm-up; streams: per stream). One table, then JSON, also written to bench-results/floor.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_report as rep
import bench_workloads as bw
from bench_context import Bench, Options, usage
from bench_infra import (
    BenchError,
    Processes,
    Service,
    cpu_sample,
    ensure_packages,
    free_port,
    listen_overflows,
    load_average,
    raise_open_files,
    start_nginx,
    wait_http,
)
from bench_run import QUICK, QUICK_STREAM_INTERVAL, meta, run_as_command
from bench_upstream import UpstreamTiming
from bench_wrk import WrkError, WrkResult

ROOT = Path(__file__).resolve().parent.parent
APP = Path(__file__).resolve().parent / "bench_floor_app.py"
NOUP_ARGS = ["POST", "application/json", bw.QUICK_ANSWER_BODY, "+" + bw.QUESTION]
STREAM_ARGS = ["POST", "text/plain; charset=utf-8", "Tell me a story.", *bw.STREAM_CHECKS]
TRICKLE_CONNECTIONS = 256


@dataclass
class FloorBench(Bench):
    """A Bench whose service is the bare relay. It keeps the relay's CPU seconds over the last wrk
    or client run, which in every case is the measured one (the warm-up comes before it)."""

    relay: Service | None = None
    last_cpu_s: float = 0.0

    @contextmanager
    def service(self, prefix: str, tag: str) -> Iterator[Service]:
        port = free_port()
        base = f"{self.upstream}/{prefix}/v1"
        argv = ["taskset", "-c", str(self.opts.service_cpu), self.python, str(APP)]
        started = self.procs.start(f"floor-{tag}", [*argv, "--port", str(port), "--base-url", base])
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", started)
            self.relay = Service(started, port)
            yield self.relay
        finally:
            self.relay = None
            self.procs.stop(started)

    def _relay_cpu_s(self) -> float:
        return cpu_sample(self.relay.started.pid).cpu_seconds if self.relay else 0.0

    def wrk(self, url: str, script: str, args: list[str], **kw: Any) -> WrkResult:
        before = self._relay_cpu_s()
        result = super().wrk(url, script, args, **kw)
        self.last_cpu_s = self._relay_cpu_s() - before
        return result

    def client(self, argv: list[str], timeout: float) -> dict[str, Any]:
        before = self._relay_cpu_s()
        result = super().client(argv, timeout)
        self.last_cpu_s = self._relay_cpu_s() - before
        return result


def _wrk_case(b: Bench, name: str, prefix: str, path: str, args: list[str], conns: int, what: str) -> rep.Row:
    with b.service(prefix, name) as svc:
        url = svc.url + path
        b.warm(url, "check.lua", args, connections=conns)
        with usage(svc.started.pid) as use:
            res = b.wrk(url, "check.lua", args, connections=conns)
    return bw._wrk_row(name, what, res, use)


def no_upstream(b: Bench) -> rep.Row:
    what = "aiohttp server alone: JSON body read and answered, no upstream call"
    return _wrk_case(b, "noup", "fast", "/noup", NOUP_ARGS, b.opts.connections, what)


def w2_trickle(b: Bench) -> rep.Row:
    what = f"W2 with chunks {b.timing.trickle_interval * 1000:.0f} ms apart: one read and write per chunk"
    return _wrk_case(b, "W2T", "trickle", "/chatgpt/chat", STREAM_ARGS, TRICKLE_CONNECTIONS, what)


CASES: dict[str, Callable[[Bench], rep.Row]] = {
    "noup": no_upstream,
    "W1": bw.w1_quick_answer,
    "W2": bw.w2_stream,
    "W2T": w2_trickle,
    "streams": bw.held_streams,
    "slow": bw.slow_upstream,
}


def run_case(name: str, b: FloorBench) -> rep.Row:
    """The case's row with the relay's CPU per request; a case that breaks becomes a failed row."""
    started, overflows = time.monotonic(), listen_overflows()
    try:
        row = CASES[name](b)
    except (BenchError, WrkError, subprocess.SubprocessError, OSError, KeyError, ValueError) as exc:
        print(f"{name} failed: {exc}", file=sys.stderr)
        return rep.Row(name, "did not complete", passed=False, measured=f"error: {str(exc)[:200]}")
    done = row.extra["ok"] if name == "streams" else row.extra["requests"]
    row.extra["relay_cpu_s"] = b.last_cpu_s
    row.extra["cpu_us_per_request"] = 1e6 * b.last_cpu_s / done if done else None
    row.extra["wall_s"] = round(time.monotonic() - started, 2)
    row.extra["listen_overflows"] = listen_overflows() - overflows
    return row


# ---- the table --------------------------------------------------------------------------------------

HEADERS = (
    "case",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "CPU µs/req",
    "req/s at 1 core",
    "CPU %",
    "RSS MiB",
    "issue 6 target",
    "floor",
)
RIGHT = range(1, 9)


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def cells(row: rep.Row) -> tuple[str, ...]:
    cpu_us = row.extra.get("cpu_us_per_request")
    target = "" if row.target == "info" else row.target
    return (
        row.workload,
        _num(row.rps),
        _num(row.p50_ms, 2),
        _num(row.p99_ms, 2),
        _num(row.errors),
        _num(cpu_us),
        _num(1e6 / cpu_us if cpu_us else None),
        _num(row.cpu_pct),
        _num(row.rss_mib, 1),
        target,
        verdict(row),
    )


def verdict(row: rep.Row) -> str:
    if row.measured.startswith("error:"):
        return "did not complete"
    return "" if row.passed is None else ("meets it" if row.passed else "misses it")


def floor_table(rows: Sequence[rep.Row]) -> str:
    """One line per case; "req/s at 1 core" = 1,000,000 / CPU µs per request (streams: per stream)."""
    lines = [HEADERS, *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]

    def fmt(line: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if i in RIGHT else v.ljust(w)
            for i, (v, w) in enumerate(zip(line, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    return "\n".join([fmt(HEADERS), fmt(["-" * w for w in widths]), *(fmt(line) for line in lines[1:])])


# ---- running ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short runs and 500 streams: a smoke run")
    p.add_argument("--only", help=f"comma-separated cases, from {','.join(CASES)}")
    p.add_argument("--duration", type=float, help="seconds per measured wrk run (15; quick 3)")
    p.add_argument("--connections", type=int, help="wrk connections for noup, W1, W2 (64)")
    p.add_argument("--output", type=Path, default=ROOT / "bench-results" / "floor.json")
    return p.parse_args(argv)


def selected(only: str | None) -> list[str]:
    names = [n.strip() for n in (only or ",".join(CASES)).split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise BenchError(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    return [name for name in CASES if name in names]


def options(args: argparse.Namespace) -> Options:
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    if args.duration is not None:
        values["duration"] = args.duration
    if args.connections is not None:
        values["connections"] = args.connections
    return Options(quick=args.quick, **values)


def run(args: argparse.Namespace) -> int:
    names, opts = selected(args.only), options(args)
    ensure_packages(sys.stderr)
    raise_open_files(max(4096, opts.streams * 3 + 1024))
    timing = UpstreamTiming(stream_interval=QUICK_STREAM_INTERVAL if opts.quick else 0.5)
    workdir = Path(tempfile.mkdtemp(prefix="alice-floor-"))
    procs = Processes(workdir)
    started, load_before = time.time(), load_average()
    rows: list[rep.Row] = []
    try:
        _, port = start_nginx(procs, opts.load_cpu, timing, max(1024, 2 * opts.streams + 256))
        python = str(ROOT / ".venv" / "bin" / "python")
        bench = FloorBench(procs, opts, f"http://127.0.0.1:{port}", timing, python)
        for name in names:
            print(f"== {name}", file=sys.stderr, flush=True)
            rows.append(run_case(name, bench))
            print(floor_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    doc = {"meta": meta(opts, names, started, load_before), "results": [r.to_json() for r in rows]}
    print(floor_table(rows))
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    rep.write_json(doc, args.output)
    print(f"written to {args.output}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_as_command("bench_floor", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
