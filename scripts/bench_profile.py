"""Where a workload's CPU goes: py-spy samples the service while wrk loads it (docs/performance.md).

    .venv/bin/pip install py-spy          # a development tool, not a dependency of the project
    .venv/bin/python scripts/bench_profile.py W1 [--duration 10] [--top 40]

Starts nginx and the working tree's service as ``scripts/bench`` does (service on core 1, load
and py-spy on core 0), warms it up, then records ``--duration`` seconds at 250 Hz and prints the
functions with the most samples of the event-loop thread: by their own time, then including
what they call. The raw folded stacks are written to ``bench-results/profile-<workload>.txt``
(for flamegraph.pl or speedscope).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench_compare import ROOT, WORKLOADS
from bench_context import Bench, Options
from bench_infra import BenchError, Processes, raise_open_files, start_nginx
from bench_upstream import UpstreamTiming

_SITE = re.compile(r" \(/\S*?/(?:site-packages|python3\.\d+)/")
_LINE = re.compile(r":\d+\)$")


def summarize(folded: Path, top: int) -> str:
    """The top functions of the main thread's stacks (threads blocked in a queue are not work)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "Thread._bootstrap" in stack:
            continue
        frames = [_LINE.sub(")", _SITE.sub(" (", frame)) for frame in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    lines = [f"{total} samples of the event-loop thread", "--- own time"]
    lines += [f"{100 * n / total:5.1f}% {name}" for name, n in own.most_common(top)]
    lines.append("--- including callees")
    lines += [f"{100 * n / total:5.1f}% {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def record(workload: str, duration: float, output: Path, connections: int = 64) -> None:
    spy = shutil.which("py-spy", path=str(ROOT / ".venv" / "bin")) or shutil.which("py-spy")
    if spy is None:
        raise BenchError("py-spy is missing: .venv/bin/pip install py-spy")
    prefix, path, script, args, threads, _ = WORKLOADS[workload]
    workdir = Path(tempfile.mkdtemp(prefix="alice-profile-"))
    procs = Processes(workdir)
    try:
        _, port = start_nginx(procs, 0, UpstreamTiming(), 2048)
        python = str(ROOT / ".venv" / "bin" / "python")
        options = Options(duration=duration, connections=connections)
        bench = Bench(procs, options, f"http://127.0.0.1:{port}", UpstreamTiming(), python)
        with bench.service(prefix, workload) as svc:
            url = svc.url + path
            bench.wrk(url, script, args, threads=threads, duration=2)
            argv = [spy, "record", "-p", str(svc.started.pid), "-d", str(int(duration)), "-r", "250"]
            argv += ["-f", "raw", "-o", str(output)]
            sampler = subprocess.Popen(["taskset", "-c", "0", *argv], stdout=subprocess.DEVNULL)
            result = bench.wrk(url, script, args, threads=threads)
            sampler.wait(duration + 30)
        print(f"{workload}: {result.rps:,.0f} req/s under the profiler, {result.errors} errors")
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=sorted(WORKLOADS))
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    opts = p.parse_args(argv)
    raise_open_files(8192)
    output = ROOT / "bench-results" / f"profile-{opts.workload}.txt"
    output.parent.mkdir(exist_ok=True)
    try:
        record(opts.workload, opts.duration, output, opts.connections)
    except BenchError as exc:
        print(f"bench_profile: {exc}", file=sys.stderr)
        return 2
    print(summarize(output, opts.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
