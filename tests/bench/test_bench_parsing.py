"""The benchmark's parsers and checkers on canned output: what the table would say, no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_clients import percentile, stream_problem
from bench_report import Row, document, table
from bench_upstream import CHUNKS, UpstreamTiming, nginx_conf, sse_events, stream_pieces
from bench_wrk import WrkError, parse_output, to_ms

W1_OUTPUT = """Running 15s test @ http://127.0.0.1:41000/chatgpt/quickAnswer
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    32.10ms    9.80ms  81.48ms   70.00%
    Req/Sec     1.95k   120.00     2.10k    80.00%
  Latency Distribution
     50%   30.49ms
     75%   36.00ms
     90%   44.00ms
     99%   81.48ms
  29220 requests in 15.00s, 10.12MB read
Requests/sec:   1948.00
Transfer/sec:    690.00KB
BENCH_RESULT {"requests":29220,"duration_us":15000000,"bytes":10612000,"errors":{"connect":0,"read":0,\
"write":0,"status":3,"timeout":1},"ok":29210,"bad":10,"p50_us":30490,"p90_us":44000,"p99_us":81480,\
"max_us":81480,"mean_us":32100.0,"first_bad":"502 upstream said \\"no\\"\\u000a"}
"""

W3_OUTPUT = """Running 3s test @ http://127.0.0.1:41001
  64 threads and 64 connections
  29220 requests in 3.10s, 1.12MB read
Requests/sec:   1037.00
BENCH_RESULT {"requests":3216,"duration_us":3098916,"bytes":1000,"errors":{"connect":0,"read":0,"write":0,\
"status":0,"timeout":0},"ok":3216,"bad":0,"p50_us":31840,"p90_us":90000,"p99_us":528400,"max_us":600000,\
"mean_us":50000.5,"first_bad":"","chats":2671,"creates":545}
"""

PLAIN_WRK = """Running 10s test @ http://127.0.0.1:8080/
  2 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   512.00us  100.00us   2.00ms   90.00%
  Latency Distribution
     50%  512.00us
     75%  600.00us
     90%    1.20ms
     99%    2.00s
  1000 requests in 1.00m, 1.00MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:     16.67
"""


def test_result_line_gives_rate_latency_and_checked_answers() -> None:
    res = parse_output(W1_OUTPUT)
    assert res.requests == 29220
    assert res.rps == pytest.approx(1948.0)
    assert (res.p50_ms, res.p99_ms, res.mean_ms) == (30.49, 81.48, 32.1)
    assert (res.ok, res.bad) == (29210, 10)
    # ten wrong answers (the 3 non-2xx among them) and one timeout
    assert res.errors == 11
    assert res.first_bad == '502 upstream said "no"\n'


def test_w3_counts_chats_per_second_not_requests() -> None:
    res = parse_output(W3_OUTPUT)
    assert res.counters == {"chats": 2671, "creates": 545}
    assert res.per_second("chats") == pytest.approx(2671 / 3.098916)
    assert res.errors == 0


def test_plain_wrk_output_is_the_fallback() -> None:
    res = parse_output(PLAIN_WRK)
    assert res.ok is None
    assert (res.requests, res.duration_s, res.rps) == (1000, 60.0, 16.67)
    assert (res.p50_ms, res.p99_ms) == (0.512, 2000.0)
    assert res.errors == 1 + 2 + 3 + 4 + 5


def test_output_without_results_is_an_error() -> None:
    with pytest.raises(WrkError, match="printed no result"):
        parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize(
    ("text", "ms"), [("512.00us", 0.512), ("1.5ms", 1.5), ("2.00s", 2000.0), ("1.00m", 60000.0)]
)
def test_wrk_durations_in_milliseconds(text: str, ms: float) -> None:
    assert to_ms(text) == pytest.approx(ms)


def _service_stream(pieces: list[str]) -> str:
    return "".join(f"data: {p}\n\n" for p in pieces) + "data: [DONE]\n\n"


def test_a_complete_stream_passes() -> None:
    assert stream_problem(_service_stream(stream_pieces()), stream_pieces()) is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_service_stream(stream_pieces()[:-1]), "'p20' missing"),
        (_service_stream([*stream_pieces()[1:], "p01 "]), "out of order"),
        (_service_stream(stream_pieces())[: -len("data: [DONE]\n\n")], "no data: [DONE]"),
        ("data: p01 \n\nevent: error\ndata: upstream broke\n\n", "error event"),
    ],
)
def test_a_broken_stream_is_reported(body: str, problem: str) -> None:
    found = stream_problem(body, stream_pieces())
    assert found is not None and problem in found


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 99) is None


def test_upstream_stream_has_every_piece_then_done() -> None:
    events = sse_events("chat")
    assert len(events) == CHUNKS + 1 and events[-1] == "data: [DONE]\n\n"
    contents = [json.loads(e[len("data: ") :])["choices"][0]["delta"]["content"] for e in events[:-1]]
    assert contents == stream_pieces()


def test_nginx_conf_serves_every_behaviour_on_loopback(tmp_path: Path) -> None:
    conf = nginx_conf(tmp_path, 8089, UpstreamTiming(slow_delay=0.2), 6000)
    for prefix in ("fast", "sse", "slow", "slowsse", "trickle"):
        assert f"location = /{prefix}/v1/chat/completions" in conf
    assert "listen 127.0.0.1:8089" in conf and "echo_sleep 0.200" in conf
    assert "worker_connections 6064" in conf


def test_table_and_json_say_which_targets_pass() -> None:
    rows = [
        Row("W1", "relay", rps=4100.0, p50_ms=10.0, p99_ms=20.0, errors=0, target=">= 4,000", passed=True),
        Row("W2", "stream", rps=1500.0, errors=2, target=">= 2,000 req/s", passed=False),
        Row("W0", "nginx", rps=50000.0),
    ]
    text = table(rows).splitlines()
    assert text[0].split()[:3] == ["workload", "req/s", "p50"]
    assert text[2].split()[-1] == "PASS" and text[3].split()[-1] == "FAIL" and text[4].split()[-1] == "-"
    assert "4,100" in text[2]
    doc = document(rows, {"quick": True})
    assert doc["all_passed"] is False
    assert [r["workload"] for r in doc["results"]] == ["W1", "W2", "W0"]
