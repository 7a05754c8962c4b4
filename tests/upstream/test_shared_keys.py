"""The key pools' state shared through Redis: two apps on one Redis (the shared server, a key
prefix of the test's own); a key disabled or cooling on one is so on the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from alice_py import appkeys
from alice_py.app import create_app
from alice_py.fake import RunningFake
from alice_py.upstream import shared_keys
from tests.support import app_config, wait_until

KEY1, KEY2 = "sk-first-1111111111111111", "sk-second-222222222222222"
HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def test_a_key_disabled_or_cooling_on_one_instance_is_so_on_the_other(
    aiohttp_client: Any, fake: RunningFake, tmp_path: Path, redis_prefix: tuple[str, str], monkeypatch: Any
) -> None:
    monkeypatch.setattr(shared_keys, "POLL", 0.05)
    url, prefix = redis_prefix
    clients = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        cfg = app_config(
            fake.url,
            tmp_path / name,
            upstream_key=KEY1,
            upstream={"keys": (KEY1, KEY2)},
            conversations={"store": "redis", "redis_url": url, "key_prefix": prefix},
        )
        clients.append(await aiohttp_client(create_app(cfg)))
    a, b = clients

    def states(client: Any) -> list[tuple[str, str | None]]:
        pool = client.app[appkeys.ROUTER].targets[0].pool
        return [(s.state, s.disabled_reason) for s in pool.snapshot()]

    fake.state.retry_after = 30
    fake.state.fail_next("rate_limit")
    assert (await a.post("/v1/chat/completions", json=HELLO)).status == 200  # KEY1 429, KEY2 answers
    assert states(a)[0] == ("cooling", None)
    await wait_until(lambda: states(b)[0] == ("cooling", None))
    cooling = b.app[appkeys.ROUTER].targets[0].pool.snapshot()[0]
    assert 28 < cooling.cooldown_remaining <= 30

    b.app[appkeys.ROUTER].targets[0].pool.disable(KEY2, "invalid key")
    await wait_until(lambda: states(a)[1] == ("disabled", "invalid key"))
    # nothing in Redis names a key
    raw = aioredis.Redis.from_url(url)
    stored = [key async for key in raw.scan_iter(match=f"{prefix}*")]
    values = [await raw.hgetall(key) for key in stored]
    await raw.aclose()
    assert stored == [f"{prefix}keys:default".encode()]
    assert all(KEY1.encode() not in k and KEY2.encode() not in k for v in values for k in v)
    # the key back in service on b is back on a
    b.app[appkeys.ROUTER].targets[0].pool.enable(KEY1)
    await wait_until(lambda: states(a)[0] == ("active", None))
    for client in clients:
        await client.close()
