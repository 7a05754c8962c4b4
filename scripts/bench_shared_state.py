"""CPU per request of the replay record and the rate limits: this process's vs Redis's.

    .venv/bin/python scripts/bench_shared_state.py [--redis redis://127.0.0.1:6379/9] [-n 5000]

What one chat pays for them: the memory limiter and replay guard (``web.ratelimit``,
``web.replay``) against the Redis ones (``web.ratelimit_redis``: the ``limits`` library's
moving window; ``web.replay_redis``: one Lua script), called back to back ``n`` times each in
one event loop (uvloop when installed), on the client side only: process CPU time per call
(``time.process_time``) and wall time per call. Redis's own CPU is not counted. Keys are
written under a prefix of this run's own and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from alice_py.redis_client import open_redis
from alice_py.server import new_event_loop
from alice_py.web.ratelimit import SlidingWindowLimiter
from alice_py.web.ratelimit_redis import RedisLimiter
from alice_py.web.replay import MemoryReplayGuard
from alice_py.web.replay_redis import RedisReplayGuard

BIG = 10**9
"""A limit never reached: every call is let through, the common case."""


async def measure(name: str, n: int, call: Callable[[int], Awaitable[object]]) -> None:
    for i in range(min(n, 200)):  # warm-up: connections opened, scripts loaded
        await call(-i - 1)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        await call(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{name:<42} {cpu / n * 1e6:8.1f} µs CPU  {wall / n * 1e6:8.1f} µs wall")


async def main(url: str, n: int) -> None:
    client = open_redis(url)
    prefix = f"bench_shared:{uuid.uuid4().hex[:8]}:"
    try:
        print(f"{'per call':<42} {'(client side)':>14}")
        memory = SlidingWindowLimiter(BIG, BIG)
        await measure("memory limiter, global", n, lambda i: memory.acquire("c"))
        await measure("memory limiter, global + per client", n, lambda i: memory.acquire(f"c{i % 50}"))
        redis_global = RedisLimiter(client, prefix, BIG)
        await measure("redis limiter, global", n, lambda i: redis_global.acquire("c"))
        both = RedisLimiter(client, prefix, BIG, BIG)
        await measure("redis limiter, global + per client", n, lambda i: both.acquire(f"c{i % 50}"))
        guard = MemoryReplayGuard(1800.0)
        await measure("memory replay guard", n, lambda i: guard.first_use(f"u{i}"))
        shared = RedisReplayGuard(client, f"{prefix}replay", 1800.0)
        await measure("redis replay guard", n, lambda i: shared.first_use(f"u{i}"))
    finally:
        async for key in client.scan_iter(match=f"*{prefix}*", count=500):
            await client.delete(key)
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("-n", type=int, default=5000)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main(args.redis, args.n))
