"""What every workload gets: the options of the run, the ``Bench`` (processes, upstream, how to
start a service and run wrk or a client on the load core) and CPU/RSS readings of a process."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_infra import (
    BenchError,
    Processes,
    Service,
    cpu_percent,
    start_service,
    tree_cpu_sample,
    tree_rss_mib,
)
from bench_upstream import UpstreamTiming
from bench_wrk import WrkResult, WrkRun, run_wrk

CLIENTS = Path(__file__).resolve().parent / "bench_clients.py"


@dataclass(frozen=True, slots=True)
class Options:
    duration: float = 15.0
    warmup: float = 2.0
    connections: int = 64
    conversations: int = 10_000
    streams: int = 5000
    stream_ramp: float = 1000.0
    ttfb_count: int = 60
    slow_duration: float = 20.0
    service_cpu: int = 1
    load_cpu: int = 0
    quick: bool = False


@dataclass
class Bench:
    procs: Processes
    opts: Options
    upstream: str
    """``http://127.0.0.1:<nginx port>``."""
    timing: UpstreamTiming
    python: str
    service_args: tuple[str, ...] = ()

    @contextmanager
    def service(
        self, prefix: str, tag: str, env: Mapping[str, str] | None = None, *,
        cpu: int | str | None = None, args: tuple[str, ...] = (),
    ) -> Iterator[Service]:
        """A fresh service on the service core (or ``cpu``), with ``args`` after the run's own."""
        base = f"{self.upstream}/{prefix}/v1"
        cores = self.opts.service_cpu if cpu is None else cpu
        svc = start_service(self.procs, self.python, cores, base, tag, (*self.service_args, *args), env)
        try:
            yield svc
        finally:
            self.procs.stop(svc.started)

    def wrk(
        self,
        url: str,
        script: str,
        args: list[str],
        *,
        connections: int | None = None,
        threads: int = 1,
        duration: float | None = None,
        cpu: int | str | None = None,
    ) -> WrkResult:
        conns = connections or self.opts.connections
        run = WrkRun(
            url,
            script,
            args,
            connections=conns,
            threads=threads,
            duration=duration or self.opts.duration,
            cpu=self.opts.load_cpu if cpu is None else cpu,
        )
        return run_wrk(run)[0]

    def warm(self, url: str, script: str, args: list[str], **kw: Any) -> None:
        """A short unrecorded run: connections opened, caches filled, lazy imports done."""
        if self.opts.warmup > 0:
            self.wrk(url, script, args, duration=self.opts.warmup, **kw)

    def client(self, argv: list[str], timeout: float) -> dict[str, Any]:
        """Run bench_clients.py on the load core; its JSON line."""
        cmd = ["taskset", "-c", str(self.opts.load_cpu), self.python, str(CLIENTS), *argv]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, start_new_session=True)
        if done.returncode != 0 or not done.stdout.strip():
            raise BenchError(f"bench client failed ({done.returncode}): {done.stderr[-1500:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


@dataclass
class Usage:
    cpu_pct: float = 0.0
    rss_mib: float = 0.0
    peak_rss_mib: float = 0.0


@contextmanager
def usage(pid: int) -> Iterator[Usage]:
    """CPU % and RSS of ``pid`` and its children (``--workers``) over the block; RSS sampled
    every 0.2 s for the peak."""
    result = Usage()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            try:
                result.peak_rss_mib = max(result.peak_rss_mib, tree_rss_mib(pid))
            except (OSError, BenchError):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    before = tree_cpu_sample(pid)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result.cpu_pct = cpu_percent(before, tree_cpu_sample(pid))
        result.rss_mib = tree_rss_mib(pid)
        result.peak_rss_mib = max(result.peak_rss_mib, result.rss_mib)
