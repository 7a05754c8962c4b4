"""Instructions per request, counted by valgrind's callgrind: a figure that does not move with
the machine's load (docs/performance.md, "Instructions per request").

    apt-get install valgrind wrk nginx-light
    .venv/bin/python scripts/bench_instructions.py pre=bfcb4aa now=. [--only W1] [--seconds 20]

Each variant (``NAME=SOURCE[:ARG,...]`` as in ``bench_compare.py``: a git revision or ``.``)
is served under ``valgrind --tool=callgrind --instr-atstart=no`` behind the same nginx fake
upstream as ``scripts/bench``. One wrk connection warms it up uncounted; then counting is
switched on (``callgrind_control -i on``), wrk sends requests for ``--seconds``, counting is
switched off and the total is divided by the answers wrk counted. ``PYTHONHASHSEED`` is fixed,
so two runs of one variant agree to a fraction of a percent whatever else the machine is doing:
the place to check a few-percent target that wall-clock CPU figures drown in noise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench_compare import ROOT, WORKLOADS, Variant, parse_variant
from bench_context import Bench, Options
from bench_infra import BenchError, Processes, raise_open_files, start_nginx
from bench_upstream import UpstreamTiming

_TOTALS = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def wrapper(workdir: Path, tag: str, python: str) -> tuple[str, Path]:
    """A stand-in for the interpreter that runs it under callgrind, counting nothing yet."""
    out = workdir / f"callgrind-{tag}.out"
    script = workdir / f"python-{tag}"
    script.write_text(
        "#!/bin/sh\n"
        f"exec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file={out} {python} \"$@\"\n"
    )
    script.chmod(0o755)
    return str(script), out


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def measure(bench: Bench, workdir: Path, workload: str, variant: Variant, tag: str, seconds: float) -> float:
    prefix, path, script, args, threads, counter = WORKLOADS[workload]
    python, out = wrapper(workdir, tag, bench.python)
    saved = dict(os.environ)
    os.environ.update(variant.env, PYTHONPATH=str(variant.path), PYTHONHASHSEED="0")
    bench.service_args = variant.args
    real_python, bench.python = bench.python, python
    connections = max(1, threads)
    try:
        with bench.service(prefix, tag) as svc:
            url = svc.url + path
            pid = str(svc.started.pid)
            bench.wrk(url, script, args, threads=threads, connections=connections, duration=3)
            callgrind_control("-z", pid)
            callgrind_control("-i", "on", pid)
            res = bench.wrk(url, script, args, threads=threads, connections=connections, duration=seconds)
            callgrind_control("-i", "off", pid)
            callgrind_control("-d", pid)
    finally:
        bench.python = real_python
        os.environ.clear()
        os.environ.update(saved)
    done = res.counters.get(counter, 0) if counter else res.requests
    dumps = sorted(out.parent.glob(out.name + "*"))
    instructions = 0
    for dump in dumps:
        if dump.stat().st_size:
            found = _TOTALS.findall(dump.read_text(errors="replace"))
            instructions = max([instructions, *map(int, found)])
    if not done or not instructions:
        raise BenchError(f"{tag}: nothing counted ({done} answers, {len(dumps)} dumps)")
    return instructions / done


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+", metavar="NAME=SOURCE[:ARG,...]")
    p.add_argument("--only", default="W1", help="workloads, from W1,W2,W3,W2T (W1)")
    p.add_argument("--seconds", type=float, default=20.0, help="counted seconds per variant (20)")
    opts = p.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("bench_instructions: valgrind is missing: apt-get install valgrind", file=sys.stderr)
        return 2
    raise_open_files(8192)
    workdir = Path(tempfile.mkdtemp(prefix="alice-instructions-"))
    procs = Processes(workdir)
    try:
        variants = [parse_variant(spec, workdir / "src") for spec in opts.variants]
        _, port = start_nginx(procs, 0, UpstreamTiming(), 2048)
        python = str(ROOT / ".venv" / "bin" / "python")
        bench = Bench(procs, Options(), f"http://127.0.0.1:{port}", UpstreamTiming(), python)
        for workload in opts.only.split(","):
            first: float | None = None
            for variant in variants:
                per = measure(bench, workdir, workload, variant, f"{workload}-{variant.name}", opts.seconds)
                change = "" if first is None else f"  {100 * (per / first - 1):+.1f}%"
                first = per if first is None else first
                figure = f"{per / 1000:9,.1f}k instructions per request"
                print(f"{workload} {variant.name:12} {figure}{change}", flush=True)
    except BenchError as exc:
        print(f"bench_instructions: {exc}", file=sys.stderr)
        return 2
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
