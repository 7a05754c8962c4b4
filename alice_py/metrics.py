"""What ``GET /metrics`` shows, in Prometheus text format (``prometheus_client``).

One registry per app (not the library's global one), so that two apps in one process (the
tests, ``--workers`` forks) never mix their counts. The hot-path calls (``request``,
``upstream_call``, ``first_byte``) keep each label set's child, so a call costs one dict
look-up and the child's own locked increment, not a ``labels()`` call. The gauges (live
conversations, open streams, keys by state) are read when scraped.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

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
disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series double the output and no dashboard reads them

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def dialect_of(path: str) -> str:
    """The API a path belongs to, for the ``dialect`` label (a bounded set of values)."""
    for prefix, name in DIALECTS:
        if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] in "/?"):
            return name
    return "other"


class Metrics:
    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "alice_requests",
            "Requests answered, by API dialect and status.",
            ["dialect", "status"],
            registry=registry,
        )
        self._upstream_calls = Counter(
            "alice_upstream_calls",
            "Model calls made for clients (probes not counted), by upstream, masked key and outcome.",
            ["upstream", "key", "outcome"],
            registry=registry,
        )
        self._duration = Histogram(
            "alice_request_duration_seconds",
            "Time from a request to its answer's headers (a stream: its start).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._first_byte = Histogram(
            "alice_upstream_first_byte_seconds",
            "Time from a model call's start (failover included) to its answer or first stream chunk.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._live = Gauge("alice_live_conversations", "Live conversations.", registry=registry)
        self._streams = Gauge("alice_open_streams", "Answers being streamed now.", registry=registry)
        self._keys = Gauge("alice_keys", "Upstream keys by state.", ["upstream", "state"], registry=registry)
        self._request_children: dict[tuple[str, int], MetricWrapperBase] = {}
        self._call_children: dict[tuple[str, str, str], MetricWrapperBase] = {}
        self.open_streams = 0

    def request(self, path: str, status: int, seconds: float) -> None:
        dialect = dialect_of(path)
        child = self._request_children.get((dialect, status))
        if child is None:
            child = self._requests.labels(dialect, str(status))
            self._request_children[(dialect, status)] = child
        child.inc()  # type: ignore[attr-defined]
        self._duration.observe(seconds)

    def upstream_call(self, upstream: str, key: str, outcome: str) -> None:
        child = self._call_children.get((upstream, key, outcome))
        if child is None:
            masked = mask_key(key) if key else NO_KEY_LABEL
            child = self._upstream_calls.labels(upstream, masked, outcome)
            self._call_children[(upstream, key, outcome)] = child
        child.inc()  # type: ignore[attr-defined]

    def first_byte(self, seconds: float) -> None:
        self._first_byte.observe(seconds)

    def stream_opened(self) -> None:
        self.open_streams += 1

    def stream_closed(self) -> None:
        self.open_streams -= 1

    def render(self, live_conversations: int, keys: Iterable[KeyState], upstreams: Iterable[str]) -> bytes:
        """The text exposition, with the gauges set from the state of now."""
        self._live.set(live_conversations)
        self._streams.set(self.open_streams)
        counts = {(name, state): 0 for name in upstreams for state in ("active", "cooling", "disabled")}
        for key in keys:
            counts[(key.upstream, key.state)] = counts.get((key.upstream, key.state), 0) + 1
        for (upstream, state), count in counts.items():
            self._keys.labels(upstream, state).set(count)
        return generate_latest(self.registry)
