"""Two real server processes on one Redis: the rate limit is exact over both, and a uuid used
on one is refused on the other and after both restarted (``[conversations] store = "redis"``)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from alice_py.fake import FakeState, RunningFake
from alice_py.web.auth import normal_token
from tests.support import clean_env, free_port

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-process"
UPSTREAM_KEY = "sk-test-0000000000004321"


@asynccontextmanager
async def instance(
    tmp_path: Path, fake: RunningFake, redis: tuple[str, str], name: str, **sections: dict[str, Any]
) -> AsyncIterator[str]:
    """One serving process (its own SQLite file) on the Redis ``redis`` = (url, key prefix)."""
    port = free_port()
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    config: dict[str, dict[str, Any]] = {
        "server": {"port": port},
        "upstream": {"base_url": fake.url, "keys": [UPSTREAM_KEY]},
        "database": {"url": f"sqlite+aiosqlite:///{folder / 'alice.db'}"},
        "conversations": {"store": "redis", "redis_url": redis[0], "key_prefix": redis[1]},
        "limits": {"per_minute": 0},
        "auth": {"mode": "none", "token": SECRET},
    }
    for section, values in sections.items():
        config[section].update(values)
    log_path = folder / f"alice-{port}.log"
    with log_path.open("a", encoding="utf-8") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.shared.launch", json.dumps(config),
            cwd=ROOT, env=clean_env(PYTHONPATH=str(ROOT)),
            stdout=asyncio.subprocess.DEVNULL, stderr=log_file,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        await up(url, proc, log_path)
        yield url
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0, read_log(log_path)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def read_log(path: Path) -> str:
    """The process's log (a small file, read when a test is failing)."""
    return path.read_text(encoding="utf-8")


async def up(url: str, proc: asyncio.subprocess.Process, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise AssertionError(f"exited with {proc.returncode}:\n{read_log(log_path)}")
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"no answer within 30 s:\n{read_log(log_path)}")


async def summary(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/chatgpt/summary", data=b"an article", headers=headers) as response,
    ):
        return response.status, await response.text()


def signed(uuid: str) -> dict[str, str]:
    return {"uuid": uuid, "token": normal_token(SECRET, uuid)}


async def test_the_limit_is_exact_across_two_processes(
    tmp_path: Path, fake: RunningFake, fake_state: FakeState, redis_prefix: tuple[str, str]
) -> None:
    limits = {"per_minute": 5}
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(instance(tmp_path, fake, redis_prefix, "a", limits=limits))
        b = await stack.enter_async_context(instance(tmp_path, fake, redis_prefix, "b", limits=limits))
        answers = await asyncio.gather(*(summary(url) for url in (a, b, a, b, a, b, a, b)))
        assert sorted(status for status, _ in answers) == [200] * 5 + [429] * 3
        for url in (a, b):
            assert await summary(url) == (429, "Server busy")
        assert len(fake_state.requests) == 5  # what the model saw: exactly the limit


async def test_a_uuid_is_refused_on_the_other_process_and_after_a_restart(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    auth = {"mode": "normal"}
    refused = (401, "uuid already used: send a fresh random uuid with each request")
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(instance(tmp_path, fake, redis_prefix, "a", auth=auth))
        b = await stack.enter_async_context(instance(tmp_path, fake, redis_prefix, "b", auth=auth))
        assert (await summary(a, signed("u-a")))[0] == 200
        assert await summary(b, signed("u-a")) == refused
        assert (await summary(b, signed("u-b")))[0] == 200
        assert await summary(a, signed("u-b")) == refused
    # Both stopped: the record is Redis's, not a process's.
    async with instance(tmp_path, fake, redis_prefix, "a", auth=auth) as again:
        for uuid in ("u-a", "u-b"):
            assert await summary(again, signed(uuid)) == refused
        assert (await summary(again, signed("u-c")))[0] == 200
