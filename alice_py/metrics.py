"""What ``GET /metrics`` shows, in Prometheus text format (``prometheus_client``).

The hot path only adds to plain numbers in this object: a request is one dict update and
one bucket update, with no lock (the event loop is one thread). ``prometheus_client``
turns them into its metric families when scraped (a custom collector), and writes the
text format. Its own ``Counter``/``Histogram`` children take a ``threading.Lock`` on
every increment: on W1 they were most of the metrics' cost, which was ~3 % of the CPU.

One registry per app (not the library's global one), so that two apps in one process (the
tests) never mix their counts. With ``--workers N`` the counts are the whole service's:
``metrics_workers.WorkerMetrics`` keeps them in files that every worker reads when scraped.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from alice_py.upstream.keypool import NO_KEY_LABEL, KeyState, mask_key

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DIALECTS = (
    ("/chatgpt", "alice"),
    ("/v1", "openai"),
    ("/conversation", "node"),
    ("/chat", "relay"),
    ("/send_message", "sendmessage"),
    ("/get_access_token", "sendmessage"),
    ("/admin", "admin"),
)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
KEY_STATES = ("active", "cooling", "disabled")
REQUESTS_HELP = "Requests answered, by API dialect and status."
CALLS_HELP = "Model calls made for clients (probes not counted), by upstream, masked key and outcome."
DURATION_HELP = "Time from a request to its answer's headers (a stream: its start)."
FIRST_BYTE_HELP = "Time from a model call's start (failover included) to its answer or first stream chunk."
OPEN_STREAMS_HELP = "Answers being streamed now."
PATHS_REMEMBERED = 4096
"""Paths whose dialect is remembered (ids in paths make them unbounded: past this, worked out)."""


Family = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily


def dialect_of(path: str) -> str:
    """The API a path belongs to, for the ``dialect`` label (a bounded set of values)."""
    for prefix, name in DIALECTS:
        if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] in "/?"):
            return name
    return "other"


class _Histogram:
    """Bucket counts (not cumulative: summed when scraped), the sum and the count. Observed in
    ``Metrics`` itself (``counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1``): a method call
    per observation was a measurable part of a request."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: above every bound (+Inf)
        self.total = 0.0

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative, running = [], 0
        for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        return HistogramMetricFamily(name, documentation, buckets=cumulative, sum_value=self.total)


class Metrics(Collector):
    def __init__(self) -> None:
        self._requests: dict[tuple[str, int], int] = {}
        self._calls: dict[tuple[str, str, str], int] = {}
        self._dialects: dict[str, str] = {}
        self._duration = _Histogram()
        self._first_byte = _Histogram()
        self.open_streams = 0
        self._live = 0
        self._keys: dict[tuple[str, str], int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def dialect(self, path: str) -> str:
        """``dialect_of(path)``, remembered for the paths seen most."""
        dialect = self._dialects.get(path)
        if dialect is None:
            dialect = dialect_of(path)
            if len(self._dialects) < PATHS_REMEMBERED:
                self._dialects[path] = dialect
        return dialect

    def request(self, path: str, status: int, seconds: float) -> None:
        dialect = self._dialects.get(path)  # self.dialect(path), inlined: this runs for every request
        if dialect is None:
            dialect = dialect_of(path)
            if len(self._dialects) < PATHS_REMEMBERED:
                self._dialects[path] = dialect
        label = (dialect, status)
        self._requests[label] = self._requests.get(label, 0) + 1
        duration = self._duration  # _Histogram.observe, inlined: this runs for every request
        duration.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        duration.total += seconds

    def upstream_call(self, upstream: str, key: str, outcome: str) -> None:
        label = (upstream, key, outcome)
        self._calls[label] = self._calls.get(label, 0) + 1

    def first_byte(self, seconds: float) -> None:
        first_byte = self._first_byte  # _Histogram.observe, inlined: once per model call
        first_byte.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        first_byte.total += seconds

    def stream_opened(self) -> None:
        self.open_streams += 1

    def stream_closed(self) -> None:
        self.open_streams -= 1

    def render(self, live_conversations: int, keys: Iterable[KeyState], upstreams: Iterable[str]) -> bytes:
        """The text exposition, with the gauges set from the state of now."""
        self._live = live_conversations
        counts = {(name, state): 0 for name in upstreams for state in KEY_STATES}
        for key in keys:
            counts[(key.upstream, key.state)] = counts.get((key.upstream, key.state), 0) + 1
        self._keys = counts
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Family]:
        yield from self.counted()
        yield GaugeMetricFamily("alice_open_streams", OPEN_STREAMS_HELP, value=self.open_streams)
        yield from self.state()

    def counted(self) -> Iterator[Family]:
        """What this process counted (``WorkerMetrics``: every worker's, from their files)."""
        requests = CounterMetricFamily(
            "alice_requests", REQUESTS_HELP, labels=["dialect", "status"]
        )
        for (dialect, status), count in sorted(self._requests.items()):
            requests.add_metric([dialect, str(status)], count)
        yield requests
        calls = CounterMetricFamily(
            "alice_upstream_calls",
            CALLS_HELP,
            labels=["upstream", "key", "outcome"],
        )
        for (upstream, key, outcome), count in sorted(self._calls.items()):
            calls.add_metric([upstream, mask_key(key) if key else NO_KEY_LABEL, outcome], count)
        yield calls
        yield self._duration.family("alice_request_duration_seconds", DURATION_HELP)
        yield self._first_byte.family("alice_upstream_first_byte_seconds", FIRST_BYTE_HELP)

    def state(self) -> Iterator[Family]:
        """The gauges of what is now, set by ``render`` (with ``--workers``, the scraped worker's
        view, which is the service's: the conversations and the key pool are shared in Redis)."""
        yield GaugeMetricFamily("alice_live_conversations", "Live conversations.", value=self._live)
        keys = GaugeMetricFamily("alice_keys", "Upstream keys by state.", labels=["upstream", "state"])
        for (upstream, state), count in self._keys.items():
            keys.add_metric([upstream, state], count)
        yield keys
