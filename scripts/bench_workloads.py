"""The workloads of issue 6, each a function from a ``Bench`` to one ``Row``.

Every workload that measures the service starts a fresh one (so RSS and CPU belong to that
workload alone), pinned to the service core, with the upstream behaviour it needs, and stops it
at the end. Load comes from the other core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import bench_report as rep
from bench_context import Bench, Usage, usage
from bench_infra import BenchError, Service, listen_overflows, rss_mib
from bench_upstream import CHAT_ANSWER, CHUNKS
from bench_wrk import WrkResult

QUESTION = "What does the fox do?"
QUICK_ANSWER_BODY = json.dumps({"question": QUESTION, "stream": False})
STREAM_CHECKS = ["+p01 ", f"+p{CHUNKS:02d} ", "+data: [DONE]", "-event: error"]
SLOW_CONNECTIONS = 128


def _wrk_row(name: str, description: str, res: WrkResult, use: Usage | None) -> rep.Row:
    extra: dict[str, Any] = {
        "requests": res.requests,
        "duration_s": res.duration_s,
        "socket_errors": res.socket_errors,
        "counters": res.counters,
    }
    if res.first_bad:
        extra["first_bad"] = res.first_bad
    return rep.Row(
        name,
        description,
        rps=res.rps,
        p50_ms=res.p50_ms,
        p99_ms=res.p99_ms,
        errors=res.errors,
        rss_mib=use.rss_mib if use else None,
        cpu_pct=use.cpu_pct if use else None,
        extra=extra,
    )


def w0_nginx(b: Bench) -> rep.Row:
    url = f"{b.upstream}/fast/v1/chat/completions"
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]})
    args = ["POST", "application/json", body, "+" + CHAT_ANSWER]
    res = b.wrk(url, "check.lua", args)
    row = _wrk_row("W0", "nginx upstream direct (baseline: what the load generator can do)", res, None)
    row.measured = f"{res.rps:,.0f} req/s"
    return row


def _relay(b: Bench, name: str, prefix: str, path: str, args: list[str], target: float, what: str) -> rep.Row:
    with b.service(prefix, name) as svc:
        url = f"{svc.url}{path}"
        b.warm(url, "check.lua", args)
        with usage(svc.started.pid) as use:
            res = b.wrk(url, "check.lua", args)
    row = _wrk_row(name, what, res, use)
    row.target, row.measured = f">= {target:,.0f} req/s", f"{res.rps:,.0f} req/s"
    row.passed = rep.at_least(res.rps, target, res.errors)
    return row


def w1_quick_answer(b: Bench) -> rep.Row:
    args = ["POST", "application/json", QUICK_ANSWER_BODY, "+" + CHAT_ANSWER]
    return _relay(
        b,
        "W1",
        "fast",
        "/chatgpt/quickAnswer",
        args,
        rep.TARGET_W1_RPS,
        "one-shot non-stream relay: quickAnswer stream=false",
    )


def w2_stream(b: Bench) -> rep.Row:
    args = ["POST", "text/plain; charset=utf-8", "Tell me a story.", *STREAM_CHECKS]
    return _relay(
        b,
        "W2",
        "sse",
        "/chatgpt/chat",
        args,
        rep.TARGET_W2_RPS,
        f"one-shot streaming relay, {CHUNKS} SSE chunks: chat without conversation",
    )


def ttfb(b: Bench) -> rep.Row:
    count = b.opts.ttfb_count
    with b.service("trickle", "ttfb") as svc:
        b.client(["streams", "--url", svc.url, "--count", "4", "--concurrency", "4"], 60)
        with usage(svc.started.pid) as use:
            res = b.client(
                [
                    "streams",
                    "--url",
                    svc.url,
                    "--count",
                    str(count),
                    "--concurrency",
                    "4",
                    "--deadline",
                    "120",
                ],
                180,
            )
    stream_s = (CHUNKS - 1) * b.timing.trickle_interval
    return rep.Row(
        "ttfb",
        f"time to first byte of a stream whose {CHUNKS} chunks take {stream_s:.2f} s (4 at a time)",
        p50_ms=res["ttfb_p50_ms"],
        p99_ms=res["ttfb_p99_ms"],
        errors=res["errors"],
        rss_mib=use.rss_mib,
        cpu_pct=use.cpu_pct,
        measured=f"TTFB p99 {res['ttfb_p99_ms'] or 0:.1f} ms",
        extra=res,
    )


def _w3(b: Bench, name: str, store: str, env: dict[str, str] | None) -> rep.Row:
    # one connection per wrk thread: the Lua state of a thread then follows one connection
    conns = b.opts.connections
    args = ["5", QUESTION, CHAT_ANSWER]
    with b.service("fast", name, env) as svc:
        b.warm(svc.url, "w3.lua", args, connections=conns, threads=conns)
        with usage(svc.started.pid) as use:
            res = b.wrk(svc.url, "w3.lua", args, connections=conns, threads=conns)
    what = f"stateful ({store} store): createTurbo {{stream: false}}, then 5 chats on it"
    row = _wrk_row(name, what, res, use)
    chats = res.per_second("chats")
    row.rps = chats
    row.target = f">= {rep.TARGET_W3_CHATS:,.0f} chats/s"
    # The service's CPU per chat (creates included): the figure that compares stores.
    cpu_us = use.cpu_pct / 100 * 1e6 / chats if chats else 0.0
    row.measured = f"{chats:,.0f} chats/s, {cpu_us:,.0f} CPU us/chat"
    row.extra["cpu_us_per_chat"] = round(cpu_us, 1)
    row.passed = rep.at_least(chats, rep.TARGET_W3_CHATS, res.errors)
    return row


def w3_stateful(b: Bench) -> rep.Row:
    return _w3(b, "W3", "memory", None)


def w3_redis(b: Bench) -> rep.Row:
    """W3 on the Redis store (``BENCH_REDIS_URL``, default the local server's db 9), keys under
    a prefix of this run's own, deleted afterwards."""
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    prefix = f"alice_bench:{os.getpid()}:"
    env = {"ALICE_CONVERSATIONS_STORE": "redis", "ALICE_CONVERSATIONS_REDIS_URL": url,
           "ALICE_CONVERSATIONS_KEY_PREFIX": prefix}  # fmt: skip
    try:
        return _w3(b, "W3redis", "redis", env)
    finally:
        delete_keys(url, prefix)


def workers_scaling(b: Bench) -> rep.Row:
    """W3 on the Redis store with ``--workers 1``, then ``--workers 2``, back to back, on the whole
    machine: the service, wrk and nginx (the upstream) share every core, as they would on a
    small server. The CPU readings sum the supervisor's workers."""
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    cores = f"0-{(os.cpu_count() or 2) - 1}"
    conns = b.opts.connections
    args = ["5", QUESTION, CHAT_ANSWER]
    runs: dict[int, dict[str, Any]] = {}
    errors = 0
    for count in (1, 2):
        prefix = f"alice_bench:{os.getpid()}:w{count}:"
        env = {"ALICE_CONVERSATIONS_STORE": "redis", "ALICE_CONVERSATIONS_REDIS_URL": url,
               "ALICE_CONVERSATIONS_KEY_PREFIX": prefix}  # fmt: skip
        try:
            with b.service("fast", f"workers{count}", env, cpu=cores, args=("--workers", str(count))) as svc:
                b.warm(svc.url, "w3.lua", args, connections=conns, threads=conns, cpu=cores)
                with usage(svc.started.pid) as use:
                    res = b.wrk(svc.url, "w3.lua", args, connections=conns, threads=conns, cpu=cores)
        finally:
            delete_keys(url, prefix)
        chats = res.per_second("chats")
        errors += res.errors
        runs[count] = {
            "chats_per_s": round(chats, 1),
            "service_cpu_pct": round(use.cpu_pct, 1),
            "cpu_us_per_chat": round(use.cpu_pct / 100 * 1e6 / chats, 1) if chats else 0.0,
            "rss_mib": round(use.rss_mib, 1),
            "errors": res.errors,
            "p99_ms": res.p99_ms,
        }
        print(f"   --workers {count}: {chats:,.0f} chats/s, service {use.cpu_pct:.0f} % CPU", file=sys.stderr)
    one, two = runs[1]["chats_per_s"], runs[2]["chats_per_s"]
    ratio = two / one if one else 0.0
    return rep.Row(
        "workers",
        f"W3 on the Redis store, --workers 1 then 2, service + wrk + nginx on cores {cores}",
        rps=two,
        errors=errors,
        rss_mib=runs[2]["rss_mib"],
        cpu_pct=runs[2]["service_cpu_pct"],
        target=f">= {rep.TARGET_WORKERS_RATIO:.1f}x chats/s with 2 workers",
        measured=f"{one:,.0f} -> {two:,.0f} chats/s ({ratio:.2f}x); service CPU "
        f"{runs[1]['service_cpu_pct']:.0f} % -> {runs[2]['service_cpu_pct']:.0f} %",
        passed=ratio >= rep.TARGET_WORKERS_RATIO and errors == 0,
        extra={"runs": runs, "ratio": round(ratio, 3)},
    )


def delete_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()


def _conversations(b: Bench, svc: Service, count: int) -> dict[str, Any]:
    argv = [
        "conversations",
        "--url",
        svc.url,
        "--count",
        str(count),
        "--concurrency",
        "64",
        "--expect",
        CHAT_ANSWER,
        "--deadline",
        "900",
    ]
    return b.client(argv, 960)


def w4_memory(b: Bench) -> rep.Row:
    count = b.opts.conversations
    warm_count = max(100, count // 10)
    # The first start on a new database runs the migrations, which loads Alembic for good; a
    # restart (the usual case) finds the database up to date. Both idle figures are kept; the
    # restart's is the one compared with the target.
    with b.service("fast", "W4") as first:
        time.sleep(1.0)
        first_idle = rss_mib(first.started.pid)
    with b.service("fast", "W4") as svc:
        pid = svc.started.pid
        time.sleep(1.0)
        idle = rss_mib(pid)
        warm = _conversations(b, svc, warm_count)
        after_warm = rss_mib(pid)
        with usage(pid) as use:
            res = _conversations(b, svc, count)
        time.sleep(0.5)
        after = rss_mib(pid)
    per_conv = (after - after_warm) * 1024 / max(1, res["conversations"])
    errors = int(res["errors"]) + int(warm["errors"])
    extra = {
        "idle_mib": idle,
        "idle_first_start_mib": first_idle,
        "after_warmup_mib": after_warm,
        "after_mib": after,
        "kib_per_conversation": per_conv,
        "kib_per_conversation_from_idle": (after - idle) * 1024 / max(1, res["conversations"] + warm_count),
        "warmup_conversations": warm_count,
        "main": res,
    }
    passed = per_conv <= rep.TARGET_KIB_PER_CONVERSATION and idle <= rep.TARGET_IDLE_MIB and errors == 0
    return rep.Row(
        "W4",
        f"memory: {count:,} conversations x 5 turns (after {warm_count:,} warm-up ones), 64 at a time",
        rps=res["requests"] / res["elapsed_s"] if res["elapsed_s"] else None,
        errors=errors,
        rss_mib=after,
        cpu_pct=use.cpu_pct,
        target=f"<= {rep.TARGET_KIB_PER_CONVERSATION:g} KiB/conv, <= {rep.TARGET_IDLE_MIB:g} MiB idle",
        measured=f"{per_conv:.1f} KiB/conv, {idle:.1f} MiB idle ({first_idle:.1f} at first start)",
        passed=passed,
        extra=extra,
    )


def slow_upstream(b: Bench) -> rep.Row:
    ideal = SLOW_CONNECTIONS / b.timing.slow_delay
    args = ["POST", "application/json", QUICK_ANSWER_BODY, "+" + CHAT_ANSWER]
    with b.service("slow", "slow") as svc:
        url = f"{svc.url}/chatgpt/quickAnswer"
        b.warm(url, "check.lua", args, connections=SLOW_CONNECTIONS)
        with usage(svc.started.pid) as use:
            res = b.wrk(url, "check.lua", args, connections=SLOW_CONNECTIONS, duration=b.opts.slow_duration)
    row = _wrk_row(
        "slow",
        f"upstream answers after {b.timing.slow_delay * 1000:.0f} ms, "
        f"{SLOW_CONNECTIONS} connections, W1 requests",
        res,
        use,
    )
    target = rep.TARGET_SLOW_FRACTION * ideal
    row.target = f">= {rep.TARGET_SLOW_FRACTION:.0%} of {ideal:,.0f} req/s"
    row.measured = f"{res.rps:,.0f} req/s ({res.rps / ideal:.1%})"
    row.passed = rep.at_least(res.rps, target, res.errors)
    row.extra["ideal_rps"] = ideal
    # closed loop: throughput = connections / mean latency, free of wrk's edge effect (the last
    # round of requests still in flight when the run stops is not counted in req/s)
    row.extra["littles_law_rps"] = SLOW_CONNECTIONS / (res.mean_ms / 1000) if res.mean_ms else None
    return row


def held_streams(b: Bench) -> rep.Row:
    count = b.opts.streams
    ramp_s = count / b.opts.stream_ramp
    stream_s = (CHUNKS - 1) * b.timing.stream_interval
    deadline = ramp_s + stream_s + 60
    with b.service("slowsse", "streams") as svc, usage(svc.started.pid) as use:
        res = b.client(
            [
                "streams",
                "--url",
                svc.url,
                "--count",
                str(count),
                "--concurrency",
                str(count),
                "--ramp",
                str(b.opts.stream_ramp),
                "--deadline",
                str(deadline),
            ],
            deadline + 30,
        )
    passed = res["peak_open"] >= count and res["errors"] == 0 and res["ok"] == count
    return rep.Row(
        "streams",
        f"{count:,} concurrent streams opened at {b.opts.stream_ramp:,.0f}/s, each {stream_s:.1f} s long",
        p50_ms=res["ttfb_p50_ms"],
        p99_ms=res["ttfb_p99_ms"],
        errors=res["errors"],
        rss_mib=use.peak_rss_mib,
        cpu_pct=use.cpu_pct,
        target=f"{count:,} open at once, 0 errors",
        measured=f"{res['peak_open']:,} open at once, {res['ok']:,} complete",
        passed=passed,
        extra=res,
    )


WORKLOADS: dict[str, Callable[[Bench], rep.Row]] = {
    "W0": w0_nginx,
    "W1": w1_quick_answer,
    "W2": w2_stream,
    "ttfb": ttfb,
    "W3": w3_stateful,
    "W3redis": w3_redis,
    "workers": workers_scaling,
    "W4": w4_memory,
    "slow": slow_upstream,
    "streams": held_streams,
}


def run_one(name: str, bench: Bench) -> rep.Row:
    """A workload's row; a workload that breaks becomes a failed row saying why, and the run goes on."""
    started, overflows = time.monotonic(), listen_overflows()
    try:
        row = WORKLOADS[name](bench)
    except (BenchError, subprocess.SubprocessError, OSError, KeyError, ValueError) as exc:
        print(f"{name} failed: {exc}", file=sys.stderr)
        row = rep.Row(name, "did not complete", passed=False, measured=f"error: {str(exc)[:200]}")
    row.extra["wall_s"] = round(time.monotonic() - started, 2)
    row.extra["listen_overflows"] = listen_overflows() - overflows
    return row
