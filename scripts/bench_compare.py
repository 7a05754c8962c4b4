"""Before/after figures of one change, measured back to back (docs/performance.md, "Method").

    .venv/bin/python scripts/bench_compare.py --only W1,W3 before=REV after=.
    .venv/bin/python scripts/bench_compare.py --only W1 on=.:ENV:ALICE_SERVER_ACCESS_LOG=true off=.
    .venv/bin/python scripts/bench_compare.py --only W3 mem=. redis=.:ENV:ALICE_CONVERSATIONS_STORE=redis,\
ENV:ALICE_CONVERSATIONS_REDIS_URL=redis://127.0.0.1:6379/9,ENV:ALICE_CONVERSATIONS_KEY_PREFIX=bench_cmp:

Each variant is ``name=SOURCE[:ARG,...]``: SOURCE is ``.`` (the working tree) or a git revision,
whose ``alice_py`` and ``migrations`` are exported to a temp dir and put first on
``PYTHONPATH``; ARGs are extra ``alice_py serve`` arguments, or ``ENV:NAME=VALUE``. For every
workload and round, each variant gets a fresh service on the same nginx, warmed up, then
measured; rounds alternate the variants, so a neighbour's load falls on both alike. Printed
per run and as medians: req/s (W3: chats/s) and the service's CPU time per request, which
other load on the machine disturbs far less than req/s does. A variant on the Redis store
(``ALICE_CONVERSATIONS_STORE=redis``) should set its own ``ALICE_CONVERSATIONS_KEY_PREFIX``: its
keys are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bench_workloads as bw
from bench_context import Bench, Options
from bench_infra import Processes, cpu_sample, raise_open_files, start_nginx
from bench_upstream import CHAT_ANSWER, UpstreamTiming

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {
    "W1": ("fast", "/chatgpt/quickAnswer", "check.lua", ["POST", "application/json", bw.QUICK_ANSWER_BODY,
                                                          "+" + CHAT_ANSWER], 1, None),
    "W2": ("sse", "/chatgpt/chat", "check.lua", ["POST", "text/plain; charset=utf-8", "Tell me a story.",
                                                  *bw.STREAM_CHECKS], 1, None),
    "W3": ("fast", "/", "w3.lua", ["5", bw.QUESTION, CHAT_ANSWER], 64, "chats"),
    # W2 with its 20 chunks 20 ms apart: each chunk is its own read and write (the cost per chunk)
    "W2T": ("trickle", "/chatgpt/chat", "check.lua", ["POST", "text/plain; charset=utf-8", "Tell me a story.",
                                                       *bw.STREAM_CHECKS], 1, None),
}


@dataclass
class Variant:
    name: str
    path: Path
    args: tuple[str, ...]
    env: dict[str, str]
    runs: list[tuple[float, float]] = field(default_factory=list)
    """(req/s, CPU µs per request) of each run."""


def export(source: str, into: Path) -> Path:
    if source == ".":
        return ROOT
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", source, "alice_py", "migrations"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def parse_variant(spec: str, workdir: Path) -> Variant:
    name, _, rest = spec.partition("=")
    source, _, extra = rest.partition(":")
    parts = [part for part in extra.split(",") if part]
    env = dict(part[4:].split("=", 1) for part in parts if part.startswith("ENV:"))
    args = tuple(part for part in parts if not part.startswith("ENV:"))
    return Variant(name, export(source or ".", workdir / name), args, env)


def measure(b: Bench, workload: str, variant: Variant, tag: str) -> str:
    prefix, path, script, args, threads, counter = WORKLOADS[workload]
    saved = dict(os.environ)
    os.environ.update(variant.env, PYTHONPATH=str(variant.path))
    try:
        with b.service(prefix, tag) as svc:
            url = svc.url + path
            b.wrk(url, script, args, threads=threads, duration=2)
            before = cpu_sample(svc.started.pid)
            res = b.wrk(url, script, args, threads=threads)
            after = cpu_sample(svc.started.pid)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    done = res.counters.get(counter, 0) if counter else res.requests
    cpu_us = 1e6 * (after.cpu_seconds - before.cpu_seconds) / max(done, 1)
    variant.runs.append((done / res.duration_s, cpu_us))
    return (
        f"{workload} {variant.name:12} {done / res.duration_s:8,.0f}/s  p50 {res.p50_ms or 0:7.2f} ms  "
        f"p99 {res.p99_ms or 0:7.2f} ms  {cpu_us:6.0f} µs CPU per request  errors {res.errors}"
    )


def compare(bench: Bench, workload: str, variants: list[Variant], rounds: int) -> None:
    for variant in variants:
        variant.runs.clear()
    for round_ in range(rounds):
        for variant in variants:
            bench.service_args = variant.args
            print(measure(bench, workload, variant, f"{workload}-{variant.name}-{round_}"), flush=True)
    for variant in variants:
        rps = statistics.median(run[0] for run in variant.runs)
        cpu = statistics.median(run[1] for run in variant.runs)
        print(f"{workload} {variant.name:12} median {rps:8,.0f}/s  {cpu:6.0f} µs CPU per request")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+", metavar="NAME=SOURCE[:ARG,...]")
    p.add_argument("--only", default="W1,W2,W3", help="workloads, from W1,W2,W3,W2T")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (5)")
    p.add_argument("--rounds", type=int, default=3, help="runs of each variant per workload (3)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    opts = p.parse_args(argv)
    raise_open_files(8192)
    workdir = Path(tempfile.mkdtemp(prefix="alice-compare-"))
    procs = Processes(workdir)
    variants: list[Variant] = []
    try:
        variants.extend(parse_variant(spec, workdir / "src") for spec in opts.variants)
        _, port = start_nginx(procs, 0, UpstreamTiming(), 2048)
        python = str(ROOT / ".venv" / "bin" / "python")
        upstream = f"http://127.0.0.1:{port}"
        options = Options(duration=opts.duration, connections=opts.connections)
        bench = Bench(procs, options, upstream, UpstreamTiming(), python)
        for workload in opts.only.split(","):
            compare(bench, workload, variants, opts.rounds)
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
        _delete_redis_keys(variants)
    return 0


def _delete_redis_keys(variants: Sequence[Variant]) -> None:
    """The keys the Redis-store variants left (under their ``ALICE_CONVERSATIONS_KEY_PREFIX``)."""
    for variant in variants:
        prefix = variant.env.get("ALICE_CONVERSATIONS_KEY_PREFIX")
        url = variant.env.get("ALICE_CONVERSATIONS_REDIS_URL", "redis://127.0.0.1:6379/0")
        if variant.env.get("ALICE_CONVERSATIONS_STORE") == "redis" and prefix:
            bw.delete_keys(url, prefix)


if __name__ == "__main__":
    sys.exit(main())
