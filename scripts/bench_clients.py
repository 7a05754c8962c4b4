"""The benchmark's own asyncio clients, for what wrk cannot do. Each prints one JSON line.

``conversations``: W4, N conversations (``createTurbo {"stream": false}`` then TURNS chats), at
most CONCURRENCY at a time, every answer checked.
``streams``: N one-off streaming chats (``POST /chatgpt/chat`` without a conversation), at most
CONCURRENCY open at once, opened at RAMP per second; counts how many were open at the same time,
measures the time to first byte and checks every piece and the final ``data: [DONE]``.

Traffic goes only to the loopback URL given; every loop is bounded by a count and a deadline.
Run: ``python scripts/bench_clients.py streams --url http://127.0.0.1:7777 --count 100``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

DONE = "data: [DONE]"


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0..100), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def stream_problem(body: str, pieces: Sequence[str]) -> str | None:
    """What is wrong with a streamed answer, or None: every piece, in order, then ``[DONE]``."""
    if "event: error" in body:
        return "error event: " + body[body.index("event: error") :][:160]
    at = 0
    for piece in pieces:
        found = body.find(piece, at)
        if found < 0:
            return f"piece {piece.strip()!r} missing or out of order"
        at = found + len(piece)
    if DONE not in body[at:]:
        return "no data: [DONE] after the last piece"
    return None


@dataclass
class Tally:
    ok: int = 0
    errors: int = 0
    first_error: str = ""
    latencies_ms: list[float] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = message[:300]


async def _post(
    session: aiohttp.ClientSession, url: str, body: str, headers: dict[str, str]
) -> tuple[int, str]:
    async with session.post(url, data=body.encode(), headers=headers) as resp:
        return resp.status, await resp.text()


async def one_conversation(
    session: aiohttp.ClientSession, base: str, turns: int, expected: str, tally: Tally, index: int
) -> None:
    start = time.monotonic()
    status, conv = await _post(
        session, f"{base}/chatgpt/createTurbo", '{"stream": false}', {"Content-Type": "application/json"}
    )
    if status != 200 or not conv.isalnum():
        tally.fail(f"createTurbo: {status} {conv[:160]}")
        return
    for turn in range(turns):
        headers = {"conversation": conv, "Content-Type": "text/plain; charset=utf-8"}
        question = f"Conversation {index}, question {turn + 1}: what does the fox do next?"
        status, answer = await _post(session, f"{base}/chatgpt/chat", question, headers)
        if status != 200 or expected not in answer:
            tally.fail(f"chat: {status} {answer[:160]}")
            return
    tally.ok += 1
    tally.latencies_ms.append((time.monotonic() - start) * 1000)


async def run_conversations(args: argparse.Namespace) -> dict[str, Any]:
    tally = Tally()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.count):
        queue.put_nowait(i)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            try:
                await one_conversation(session, args.url, args.turns, args.expect, tally, index)
            except (aiohttp.ClientError, TimeoutError) as exc:
                tally.fail(f"{type(exc).__name__}: {exc}")

    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(args.concurrency)]
        try:
            await asyncio.wait_for(asyncio.gather(*workers), args.deadline)
        except TimeoutError:
            tally.fail(f"deadline of {args.deadline} s reached with {queue.qsize()} conversations left")
    elapsed = time.monotonic() - started
    return {
        "conversations": tally.ok,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "elapsed_s": elapsed,
        "requests": tally.ok * (args.turns + 1),
        "conversations_per_s": tally.ok / elapsed if elapsed else 0.0,
    }


@dataclass
class OpenCount:
    now: int = 0
    peak: int = 0

    def opened(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def closed(self) -> None:
        self.now -= 1


async def one_stream(
    session: aiohttp.ClientSession, url: str, pieces: Sequence[str], tally: Tally, count: OpenCount
) -> None:
    sent = time.monotonic()
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    async with session.post(f"{url}/chatgpt/chat", data=b"Tell me a long story.", headers=headers) as resp:
        if resp.status != 200:
            tally.fail(f"{resp.status} {(await resp.text())[:160]}")
            return
        chunks: list[bytes] = []
        is_open = False
        try:
            async for chunk in resp.content.iter_any():
                if not is_open:
                    tally.latencies_ms.append((time.monotonic() - sent) * 1000)
                    count.opened()
                    is_open = True
                chunks.append(chunk)
        finally:
            if is_open:
                count.closed()
    problem = stream_problem(b"".join(chunks).decode("utf-8", "replace"), pieces)
    if problem:
        tally.fail(problem)
    else:
        tally.ok += 1


async def run_streams(args: argparse.Namespace) -> dict[str, Any]:
    pieces = [f"p{i:02d} " for i in range(1, args.pieces + 1)]
    tally, count = Tally(), OpenCount()
    limit = asyncio.Semaphore(args.concurrency)

    async def guarded(session: aiohttp.ClientSession) -> None:
        try:
            await one_stream(session, args.url, pieces, tally, count)
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.fail(f"{type(exc).__name__}: {exc}")
        finally:
            limit.release()

    timeout = aiohttp.ClientTimeout(total=args.deadline)
    started = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        for _ in range(args.count):
            await limit.acquire()
            tasks.append(asyncio.create_task(guarded(session)))
            if args.ramp > 0:
                await asyncio.sleep(1 / args.ramp)
        remaining = max(1.0, args.deadline - (time.monotonic() - started))
        _, pending = await asyncio.wait(tasks, timeout=remaining)
        for task in pending:
            task.cancel()
            tally.fail("deadline reached with the stream still open")
        await asyncio.gather(*pending, return_exceptions=True)
    return {
        "streams": args.count,
        "ok": tally.ok,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "peak_open": count.peak,
        "elapsed_s": time.monotonic() - started,
        "ttfb_p50_ms": percentile(tally.latencies_ms, 50),
        "ttfb_p99_ms": percentile(tally.latencies_ms, 99),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    conv = sub.add_parser("conversations", help="W4: many 5-turn conversations")
    conv.add_argument("--turns", type=int, default=5)
    conv.add_argument("--expect", default="", help="text every chat answer must contain")
    streams = sub.add_parser("streams", help="concurrent streams and time to first byte")
    streams.add_argument("--pieces", type=int, default=20)
    streams.add_argument("--ramp", type=float, default=0, help="new streams per second (0: at once)")
    for p in (conv, streams):
        p.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:7777")
        p.add_argument("--count", type=int, required=True)
        p.add_argument("--concurrency", type=int, default=64)
        p.add_argument("--deadline", type=float, default=300.0, help="give up after this many seconds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.url.startswith(("http://127.", "http://localhost")):
        print("bench clients only talk to loopback addresses", file=sys.stderr)
        return 2
    run = run_conversations if args.mode == "conversations" else run_streams
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
