"""Redis for tests: the machine's server with a key prefix of the test's own, or a private server.

- ``redis_prefix`` (fixture): ``(url, prefix)`` on the shared server at 127.0.0.1:6379,
  database ``TEST_DB``; the test's keys all start with ``prefix`` and are deleted
  afterwards. A prefix per test (not a flush) lets several test runs share the server.
  Without Redis the test fails and says so, unless ``ALICE_TEST_SKIP_REDIS=1`` says to skip.
- ``own_redis`` (fixture): a ``redis-server`` of the test's own on a free port, which the
  test may stop and start again (the shared server on 6379 is never stopped).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support import free_port

SHARED_REDIS = "redis://127.0.0.1:6379"
TEST_DB = 9
"""The shared server's database the tests use (0 is left to anything else on the machine)."""


def _missing(reason: str) -> None:
    if os.environ.get("ALICE_TEST_SKIP_REDIS") == "1":
        pytest.skip(f"{reason}; ALICE_TEST_SKIP_REDIS=1")
    pytest.fail(f"{reason}: start it, or set ALICE_TEST_SKIP_REDIS=1 to skip these tests", False)


async def delete_prefixed(client: aioredis.Redis, prefix: str) -> None:
    async for key in client.scan_iter(match=f"{prefix}*", count=500):
        await client.delete(key)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[str, str]]:
    url = f"{SHARED_REDIS}/{TEST_DB}"
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        await client.aclose()
        _missing(f"Redis at 127.0.0.1:6379 is missing ({exc})")
    prefix = f"alice_test:{uuid.uuid4().hex[:12]}:"
    try:
        yield url, prefix
    finally:
        await delete_prefixed(client, prefix)
        await client.aclose()


class OwnRedis:
    """A private ``redis-server`` (no persistence unless asked) that a test can stop and start."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._extra = extra
        self._proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _missing("redis-server is not installed (Debian package redis-server)")
            return
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(  # noqa: ASYNC220 (starting it does not wait)
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._workdir), *self._extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = aioredis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            for _ in range(100):
                try:
                    await client.ping()
                    return
                except (OSError, aioredis.RedisError):
                    await asyncio.sleep(0.05)
            raise RuntimeError(f"redis-server on port {self.port} did not start")
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        self._proc = None


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    await server.start()
    try:
        yield server
    finally:
        server.stop()
