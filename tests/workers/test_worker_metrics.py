"""A ``--workers`` process's ``/metrics`` (counts in prometheus_client's multiprocess files) reads
exactly as a single process's does: same names, labels, buckets and values."""

from __future__ import annotations

from pathlib import Path

import pytest

from alice_py.metrics import Metrics
from alice_py.metrics_workers import DIRECTORY_ENV, WorkerMetrics
from alice_py.upstream.keypool import KeyState


def _exposition(metrics: Metrics) -> list[str]:
    metrics.request("/chatgpt/chat", 200, 0.02)
    metrics.request("/chatgpt/chat", 200, 0.7)
    metrics.request("/v1/chat/completions", 429, 3.0)
    metrics.request("/nowhere", 404, 500.0)  # above every bucket
    metrics.upstream_call("default", "sk-abcdefgh12345678", "ok")
    metrics.upstream_call("default", "", "no_key")
    metrics.first_byte(0.3)
    metrics.stream_opened()
    metrics.stream_opened()
    metrics.stream_closed()
    key = KeyState(
        masked="sk-…5678", state="active", cooldown_until=None, cooldown_remaining=0.0,
        disabled_reason=None, requests=1, failures=0, last_error=None,
    )  # fmt: skip
    return sorted(metrics.render(3, [key], ["default"]).decode().splitlines())


def test_the_files_read_as_the_plain_counts_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DIRECTORY_ENV, str(tmp_path))  # as the supervisor sets it for its workers
    plain = _exposition(Metrics())
    in_files = _exposition(WorkerMetrics(str(tmp_path)))
    assert in_files == plain
    assert 'alice_requests_total{dialect="alice",status="200"} 2.0' in in_files
    assert 'alice_request_duration_seconds_bucket{le="+Inf"} 4.0' in in_files
    assert "alice_open_streams 1.0" in in_files
    assert list(tmp_path.glob("*.db"))  # the counts are in the files, for the other workers to read
