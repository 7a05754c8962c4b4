"""The floor relay's SSE decoding and the floor table, on canned input: no network."""

from __future__ import annotations

import re

from bench_floor import floor_table
from bench_floor_app import split_pieces, sse_events
from bench_report import Row
from bench_upstream import sse_events as upstream_events
from bench_upstream import stream_pieces


def test_pieces_split_across_reads_come_out_whole_and_in_order() -> None:
    body = "".join(upstream_events("chat")).encode()
    rest, seen, finished = b"", [], False
    for start in range(0, len(body), 37):  # reads that cut lines, and JSON, anywhere
        pieces, rest, finished = split_pieces(rest + body[start : start + 37])
        seen.extend(pieces)
    assert seen == stream_pieces()
    assert finished


def test_done_ends_the_stream_and_drops_what_follows() -> None:
    read = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: [DONE]\n\nda'
    pieces, rest, finished = split_pieces(read)
    assert (pieces, rest, finished) == (["a"], b"", True)


def test_events_keep_a_multiline_piece_in_one_event() -> None:
    assert sse_events(["p01 ", "two\nlines"]) == b"data: p01 \n\ndata: two\ndata: lines\n\n"


def test_table_gives_cpu_per_request_and_what_one_core_would_do() -> None:
    w1 = Row("W1", "relay", rps=1455.4, p50_ms=40.08, p99_ms=218.0, errors=0, cpu_pct=51, rss_mib=41.9)
    w1.target, w1.passed = ">= 4,000 req/s", False
    w1.extra["cpu_us_per_request"] = 250.0
    broken = Row("W2", "did not complete", passed=False, measured="error: wrk exited with 1")
    header, _, *lines = (re.split(r"\s{2,}", line.strip()) for line in floor_table([w1, broken]).splitlines())
    assert header[5:7] == ["CPU µs/req", "req/s at 1 core"]
    assert lines[0] == ["W1", "1,455", "40.08", "218.00", "0", "250", "4,000", "51", "41.9", ">= 4,000 req/s",
                        "misses it"]  # fmt: skip
    assert lines[1] == ["W2", "-", "-", "-", "-", "-", "-", "-", "-", "did not complete"]
