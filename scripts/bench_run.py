"""The benchmark of issue 6: ``scripts/bench [--quick] [--only W1,W3] [--workers] [--duration S]``.

Starts nginx as a fast fake OpenAI upstream, then for each workload a fresh service pinned to one
core (``taskset -c 1``) and load from the other (``taskset -c 0 wrk`` or the asyncio clients in
``bench_clients.py``); prints one table plus its JSON, and writes the JSON to
``bench-results/latest.json``. Everything it starts is stopped at the end, also on Ctrl-C or error.
See docs/performance.md for the method.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import bench_report as rep
from bench_context import Bench, Options
from bench_infra import BenchError, Processes, ensure_packages, load_average, raise_open_files, start_nginx
from bench_upstream import UpstreamTiming
from bench_workloads import WORKLOADS, run_one

ROOT = Path(__file__).resolve().parent.parent
QUICK = {
    "duration": 3.0,
    "warmup": 1.0,
    "conversations": 1000,
    "streams": 500,
    "stream_ramp": 500.0,
    "ttfb_count": 20,
    "slow_duration": 4.0,
}
QUICK_STREAM_INTERVAL = 0.2


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="short runs and smaller counts: a smoke run")
    p.add_argument("--only", help=f"comma-separated workloads, from {','.join(WORKLOADS)}")
    p.add_argument(
        "--workers",
        action="store_true",
        help="only the --workers run: W3 on Redis with 1 worker, then 2, on every core (= --only workers)",
    )
    p.add_argument("--duration", type=float, help="seconds per measured wrk run (15; quick 3)")
    p.add_argument("--connections", type=int, help="wrk connections for W0-W3 (64)")
    p.add_argument("--conversations", type=int, help="W4 conversations (10000; quick 1000)")
    p.add_argument("--streams", type=int, help="concurrent streams to hold (5000; quick 500)")
    p.add_argument("--service-cpu", type=int, default=1, help="core for the service (1)")
    p.add_argument("--load-cpu", type=int, default=0, help="core for wrk, the clients and nginx (0)")
    p.add_argument("--python", default=None, help="the interpreter that runs alice_py (./.venv/bin/python)")
    p.add_argument(
        "--service-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for `alice_py serve`, repeatable (e.g. --service-arg=--log-level=WARNING)",
    )
    p.add_argument("--output", type=Path, default=ROOT / "bench-results" / "latest.json")
    p.add_argument("--keep-workdir", action="store_true", help="keep the temp dir with the logs")
    return p.parse_args(argv)


def selected(only: str | None) -> list[str]:
    if not only:
        return list(WORKLOADS)
    by_lower = {name.lower(): name for name in WORKLOADS}
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n.lower() not in by_lower]
    if unknown:
        raise BenchError(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    return [name for name in WORKLOADS if name.lower() in {n.lower() for n in names}]


def options(args: argparse.Namespace) -> Options:
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    for name in ("duration", "connections", "conversations", "streams"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.duration is not None and not args.quick:
        values["slow_duration"] = max(args.duration, 10.0)
    return Options(service_cpu=args.service_cpu, load_cpu=args.load_cpu, quick=args.quick, **values)


def python_for_service(given: str | None) -> str:
    if given:
        return given
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
    )
    return done.stdout.strip() or "unknown"


def meta(opts: Options, names: list[str], started: float, load_before: list[float]) -> dict[str, Any]:
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_s": round(time.time() - started, 1),
        "commit": git_commit(),
        "workloads": names,
        "options": dataclasses.asdict(opts),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_before": load_before,
        "loadavg_after": load_average(),
        "note": "2-core machine shared with other work: figures are noisy unless the load averages are low",
    }


def run(args: argparse.Namespace) -> int:
    names = selected("workers" if args.workers else args.only)
    opts = options(args)
    ensure_packages(sys.stderr)
    raise_open_files(max(4096, opts.streams * 3 + 1024))
    timing = UpstreamTiming(stream_interval=QUICK_STREAM_INTERVAL if args.quick else 0.5)
    workdir = Path(tempfile.mkdtemp(prefix="alice-bench-"))
    procs = Processes(workdir)
    started, load_before = time.time(), load_average()
    rows: list[rep.Row] = []
    try:
        _, port = start_nginx(procs, opts.load_cpu, timing, max(1024, 2 * opts.streams + 256))
        upstream = f"http://127.0.0.1:{port}"
        python = python_for_service(args.python)
        bench = Bench(procs, opts, upstream, timing, python, tuple(args.service_arg))
        for name in names:
            print(f"== {name}", file=sys.stderr, flush=True)
            rows.append(run_one(name, bench))
            print(rep.table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        procs.stop_all()
        if args.keep_workdir:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    doc = rep.document(rows, meta(opts, names, started, load_before))
    print(rep.table(rows))
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    rep.write_json(doc, args.output)
    print(f"written to {args.output}", file=sys.stderr)
    return 0 if doc["all_passed"] else 1


def run_as_command(name: str, work: Callable[[], int]) -> int:
    """``work()`` as a benchmark command: SIGTERM and Ctrl-C stop it (and, through the
    ``finally`` blocks, everything it started); its errors are one line and status 2."""

    def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
        print(f"{name}: terminated; stopping everything it started", file=sys.stderr)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    # a shell without job control starts background commands with SIGINT ignored; Ctrl-C and
    # `kill -INT` should stop the run (and what it started) however it was launched
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return work()
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted; everything it started is stopped", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_as_command("bench", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
