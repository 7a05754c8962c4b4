"""``/metrics`` for ``--workers N``: the whole service's counts, whichever worker is scraped.

prometheus_client's multiprocess mode: the supervisor makes a fresh directory for the
service's life (``PROMETHEUS_MULTIPROC_DIR``, removed at its stop); each worker writes its
counts to memory-mapped files of its own there, and the worker that answers a scrape merges
every worker's files (``MultiProcessCollector``). A worker that died leaves its counters in
place, so the service's totals never go back; its share of the open-streams gauge
(``livesum``) is dropped by the supervisor (``mark_process_dead``).

The gauges of shared state (live conversations, keys by state) are not in the files: the
scraped worker reads them as it answers, and its view is the service's (both live in Redis).

The values are the library's own mmap-backed ones (``values.MultiProcessValue``), made here
rather than through ``Counter``/``Histogram``: those pick their value class when
prometheus_client is first imported, which in a worker is before the fork, without the
directory. A single-process ``serve`` keeps ``metrics.Metrics`` (plain numbers, no file).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from typing import Protocol, cast

from prometheus_client import CollectorRegistry, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from alice_py.metrics import (
    CALLS_HELP,
    DURATION_HELP,
    FIRST_BYTE_HELP,
    LATENCY_BUCKETS,
    OPEN_STREAMS_HELP,
    REQUESTS_HELP,
    Family,
    Metrics,
)
from alice_py.upstream.keypool import NO_KEY_LABEL, mask_key

DIRECTORY_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Set by the supervisor for its workers (the name prometheus_client reads it under)."""


class _Value(Protocol):
    def inc(self, amount: float) -> None: ...


class _ValueClass(Protocol):
    def __call__(
        self,
        typ: str,
        metric_name: str,
        name: str,
        labelnames: tuple[str, ...],
        labelvalues: tuple[str, ...],
        help_text: str,
        multiprocess_mode: str = "",
    ) -> _Value: ...


class _FileHistogram:
    """A histogram whose buckets (not cumulative: the collector sums them) and sum are in the files."""

    __slots__ = ("buckets", "total")

    def __init__(self, value_class: _ValueClass, name: str, documentation: str) -> None:
        bounds = (*map(str, LATENCY_BUCKETS), "+Inf")  # as metrics._Histogram writes them
        self.buckets = [
            value_class("histogram", name, f"{name}_bucket", ("le",), (bound,), documentation)
            for bound in bounds
        ]
        self.total = value_class("histogram", name, f"{name}_sum", (), (), documentation)

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)].inc(1)
        self.total.inc(seconds)


class _State(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Family]:
        return self._metrics.state()


class WorkerMetrics(Metrics):
    """``Metrics`` with the counts in ``directory``, merged over every worker when scraped."""

    def __init__(self, directory: str) -> None:
        super().__init__()
        # The library leaves these two untyped: their use is typed here (_ValueClass).
        self._value_class = cast(_ValueClass, values.MultiProcessValue())  # type: ignore[no-untyped-call]
        self._request_values: dict[tuple[str, int], _Value] = {}
        self._call_values: dict[tuple[str, str, str], _Value] = {}
        in_files = self._value_class
        self._duration_file = _FileHistogram(in_files, "alice_request_duration_seconds", DURATION_HELP)
        self._first_byte_file = _FileHistogram(in_files, "alice_upstream_first_byte_seconds", FIRST_BYTE_HELP)
        # livesum: the streams of the workers alive now (a dead one's are dropped).
        self._streams = self._value_class(
            "gauge", "alice_open_streams", "alice_open_streams", (), (), OPEN_STREAMS_HELP, "livesum"
        )
        self.registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(self.registry, directory)  # type: ignore[no-untyped-call]
        self.registry.register(_State(self))

    def request(self, path: str, status: int, seconds: float) -> None:
        label = (self.dialect(path), status)
        value = self._request_values.get(label)
        if value is None:
            value = self._request_values[label] = self._value_class(
                "counter", "alice_requests", "alice_requests_total",
                ("dialect", "status"), (label[0], str(status)), REQUESTS_HELP,
            )  # fmt: skip
        value.inc(1)
        self._duration_file.observe(seconds)

    def upstream_call(self, upstream: str, key: str, outcome: str) -> None:
        label = (upstream, key, outcome)
        value = self._call_values.get(label)
        if value is None:
            masked = mask_key(key) if key else NO_KEY_LABEL
            value = self._call_values[label] = self._value_class(
                "counter", "alice_upstream_calls", "alice_upstream_calls_total",
                ("upstream", "key", "outcome"), (upstream, masked, outcome), CALLS_HELP,
            )  # fmt: skip
        value.inc(1)

    def first_byte(self, seconds: float) -> None:
        self._first_byte_file.observe(seconds)

    def stream_opened(self) -> None:
        self._streams.inc(1)

    def stream_closed(self) -> None:
        self._streams.inc(-1)


def worker_metrics_dir() -> str | None:
    """The directory the supervisor made for its workers' counts, or ``None`` outside ``--workers``."""
    return os.environ.get(DIRECTORY_ENV) or None
