"""Several upstreams through the real app: X-Upstream, the admin view per upstream, /metrics
that matches what was done, 429 with Retry-After when every key cools, [[upstreams]] from TOML."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alice_py import appkeys, config
from alice_py.app import create_app
from alice_py.config import UpstreamEntry
from alice_py.failure_log import LOGGER
from alice_py.fake import RunningFake, start_fake_upstream
from alice_py.web.accesslog import ACCESS_LOGGER, runner_kwargs
from tests.dialects.conftest import ADMIN_PASSWORD
from tests.support import app_config

K1, K2, L1 = "sk-one-1111111111111111", "sk-two-2222222222222222", "sk-local-4444444444444444"
HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def second() -> AsyncIterator[RunningFake]:
    running = await start_fake_upstream()
    yield running
    await running.close()


async def make(
    aiohttp_client: Any,
    fake: RunningFake,
    second: RunningFake,
    tmp_path: Path,
    access_log: bool = False,
    **sections: dict[str, Any],
) -> Client:
    cfg = app_config(fake.url, tmp_path, upstream_key=K1, admin={"password": ADMIN_PASSWORD}, **sections)
    upstreams = (
        UpstreamEntry(name="main", base_url=fake.url, keys=(K1, K2)),
        UpstreamEntry(name="local", base_url=second.url, keys=(L1,), priority=1),
    )
    server = TestServer(create_app(dataclasses.replace(cfg, upstreams=upstreams)))
    if access_log:
        await server.start_server(**runner_kwargs(True))  # as `alice-py serve` runs it
    client: Client = await aiohttp_client(server)
    return client


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition, labels in any order (0 when absent)."""
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if metric == name and found == labels:
            return float(value)
    return 0.0


async def test_failover_is_seen_in_x_upstream_admin_and_metrics(
    aiohttp_client: Any, fake: RunningFake, second: RunningFake, tmp_path: Path
) -> None:
    client = await make(aiohttp_client, fake, second, tmp_path)
    ok = await client.post("/v1/chat/completions", json=HELLO)
    assert ok.status == 200 and ok.headers["X-Upstream"] == "main"
    fake.state.fail_next("server_error", 2)  # both keys of "main" fail: "local" answers
    moved = await client.post("/v1/chat/completions", json=HELLO)
    assert moved.status == 200 and moved.headers["X-Upstream"] == "local"
    streamed = await client.post("/v1/chat/completions", json={**HELLO, "stream": True})
    await streamed.read()
    assert streamed.headers["X-Upstream"] in ("main", "local")

    keys = await (await client.get("/admin/keys", headers={"Authorization": ADMIN_PASSWORD})).json()
    assert [(k["upstream"], k["key"], k["state"]) for k in keys["keys"]] == [
        ("main", "sk-…1111", "cooling"),
        ("main", "sk-…2222", "cooling"),
        ("local", "sk-…4444", "active"),
    ]
    assert keys["keys"][0]["failures"] == 1 and keys["keys"][0]["success_rate"] == 0.5

    metrics = await client.get("/metrics")  # no credentials needed
    assert metrics.status == 200
    text = await metrics.text()
    assert K1 not in text and L1 not in text
    assert sample(text, "alice_requests_total", dialect="openai", status="200") == 3
    assert sample(text, "alice_upstream_calls_total", upstream="main", key="sk-…1111", outcome="ok") == 1
    assert (
        sample(text, "alice_upstream_calls_total", upstream="main", key="sk-…1111", outcome="server_error")
        == 1
    )
    assert (
        sample(text, "alice_upstream_calls_total", upstream="main", key="sk-…2222", outcome="server_error")
        == 1
    )
    assert sample(text, "alice_upstream_calls_total", upstream="local", key="sk-…4444", outcome="ok") == 2
    assert sample(text, "alice_keys", upstream="main", state="cooling") == 2
    assert sample(text, "alice_keys", upstream="local", state="active") == 1
    assert sample(text, "alice_upstream_first_byte_seconds_count") == 3
    assert sample(text, "alice_request_duration_seconds_count") >= 3
    assert sample(text, "alice_open_streams") == 0
    assert "alice_live_conversations 0.0" in text
    await client.close()


async def test_every_key_cooling_is_a_429_with_retry_after(
    aiohttp_client: Any, fake: RunningFake, second: RunningFake, tmp_path: Path
) -> None:
    client = await make(aiohttp_client, fake, second, tmp_path, routing={"wait_for_key": 1.0})
    fake.state.retry_after = 30
    second.state.retry_after = 20
    fake.state.fail_next("rate_limit", 2)
    second.state.fail_next("rate_limit")
    first = await client.post("/v1/chat/completions", json=HELLO)
    assert first.status == 429  # every key tried once within max_attempts
    refused = await client.post("/v1/chat/completions", json=HELLO)
    assert refused.status == 429 and refused.headers["Retry-After"] == "20"
    alice = await client.post("/chatgpt/quickAnswer", json={"question": "hi", "stream": False})
    assert alice.status == 429 and alice.headers["Retry-After"] in ("19", "20")
    await client.close()


async def test_metrics_token_is_asked_for_when_set(
    aiohttp_client: Any, fake: RunningFake, second: RunningFake, tmp_path: Path
) -> None:
    client = await make(aiohttp_client, fake, second, tmp_path, metrics={"token": "scrape-me"})
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer nope"})).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})).status == 200
    await client.close()


def test_upstreams_from_toml_replace_the_single_upstream(tmp_path: Path) -> None:
    keys = tmp_path / "openai.txt"
    keys.write_text("sk-file-1\n\nsk-file-2\n", encoding="utf-8")
    path = tmp_path / "alice.toml"
    path.write_text(
        f"""
[upstream]
timeout = 12.0
[[upstreams]]
name = "openai"
base_url = "https://api.openai.com/v1"
keys_file = "{keys}"
models = ["gpt-4o", "gpt-4o-mini"]
[[upstreams]]
name = "local"
base_url = "http://127.0.0.1:8080/v1"
priority = 1
timeout = 99
""",
        encoding="utf-8",
    )
    cfg = config.load(
        str(path), {"OPENAI_API_KEY": "sk-env"}, {"upstream": {"keys_file": str(tmp_path / "x")}}
    )
    assert [(u.name, u.keys, u.models, u.priority, u.timeout) for u in cfg.upstreams] == [
        ("openai", ("sk-file-1", "sk-file-2"), ("gpt-4o", "gpt-4o-mini"), 0, 12.0),
        ("local", (), ("*",), 1, 99.0),
    ]
    assert cfg.upstream.keys == ()  # OPENAI_API_KEY adds nothing once [[upstreams]] is there


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ('[[upstreams]]\nbase_url = "http://x/v1"\n', "needs a name"),
        ('[[upstreams]]\nname = "a"\nbase_url = "http://x/v1"\ncolour = 1\n', "unknown key 'colour'"),
        ('[[upstreams]]\nname = "a"\nbase_url = "http://x/v1"\nweight = "x"\n', "weight must be an integer"),
        ('[[upstreams]]\nname = "a"\nbase_url = "http://x/v1"\n' * 2, "the name 'a' is used twice"),
        ('[[upstreams]]\nname = "a"\nbase_url = "x"\n', "must start with http"),
    ],
)
def test_upstreams_mistakes_are_named(tmp_path: Path, tables: str, message: str) -> None:
    path = tmp_path / "alice.toml"
    path.write_text(tables, encoding="utf-8")
    with pytest.raises(config.ConfigError, match=message):
        config.load(str(path), {}, {})


async def test_test_now_brings_a_disabled_key_back(
    aiohttp_client: Any, fake: RunningFake, second: RunningFake, tmp_path: Path
) -> None:
    client = await make(aiohttp_client, fake, second, tmp_path)
    pool = client.app[appkeys.ROUTER].targets[0].pool
    pool.disable(K2, "invalid key")
    auth = {"Authorization": ADMIN_PASSWORD}
    tested = await client.post("/admin/keys/test", json=["sk-…2222", "sk-…9999"], headers=auth)
    body = await tested.json()
    assert body == {
        "results": [{"key": "sk-…2222", "upstream": "main", "ok": True, "error": None}],
        "not_found": ["sk-…9999"],
    }
    assert pool.snapshot()[1].state == "active"
    assert (await client.post("/admin/keys/test", json=["sk-…2222"])).status == 401
    await client.close()


async def test_keys_added_for_an_upstream_serve_there_and_stay_there_after_a_restart(
    aiohttp_client: Any, fake: RunningFake, second: RunningFake, tmp_path: Path
) -> None:
    auth = {"Authorization": ADMIN_PASSWORD}
    added_key = "sk-added-5555555555555555"
    first = await make(aiohttp_client, fake, second, tmp_path)
    added = await first.patch("/admin/keys", json={"upstream": "local", "keys": [added_key]}, headers=auth)
    assert await added.json() == {
        "added": ["sk-…5555"],
        "already_present": [],
        "upstream": "local",
        "count": 2,
    }
    refused = await first.patch("/admin/keys", json={"upstream": "nope", "keys": [added_key]}, headers=auth)
    assert refused.status == 400
    assert (await refused.json())["error"] == "No upstream is named 'nope': the upstreams are 'main', 'local'"
    moved = await first.patch("/admin/keys", json=[added_key], headers=auth)  # the first upstream: "main"
    assert moved.status == 400 and "stored for the upstream 'local'" in (await moved.json())["error"]
    await first.close()

    again = await make(aiohttp_client, fake, second, tmp_path)
    keys = await (await again.get("/admin/keys", headers=auth)).json()
    assert [(k["upstream"], k["key"], k["source"]) for k in keys["keys"]] == [
        ("main", "sk-…1111", "config"),
        ("main", "sk-…2222", "config"),
        ("local", "sk-…4444", "config"),
        ("local", "sk-…5555", "admin"),
    ]
    fake.state.fail_next("server_error", 2)  # "main" fails: "local" answers, with both its keys
    for _ in range(2):
        assert (await again.post("/v1/chat/completions", json=HELLO)).headers["X-Upstream"] == "local"
    assert set(second.state.keys_used) == {L1, added_key}
    assert added_key not in fake.state.keys_used
    removed = await again.delete("/admin/keys", json=["sk-…5555"], headers=auth)
    assert (await removed.json())["removed"] == ["sk-…5555"]
    await again.close()


async def test_a_stored_key_of_an_upstream_no_longer_configured_is_not_sent_elsewhere(
    aiohttp_client: Any,
    fake: RunningFake,
    second: RunningFake,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = {"Authorization": ADMIN_PASSWORD}
    first = await make(aiohttp_client, fake, second, tmp_path)
    await first.patch(
        "/admin/keys", json={"upstream": "local", "keys": ["sk-gone-6666666666666666"]}, headers=auth
    )
    await first.close()
    cfg = app_config(fake.url, tmp_path, upstream_key=K1, admin={"password": ADMIN_PASSWORD})
    only_main = dataclasses.replace(
        cfg, upstreams=(UpstreamEntry(name="main", base_url=fake.url, keys=(K1,)),)
    )
    again: Client = await aiohttp_client(create_app(only_main))
    keys = await (await again.get("/admin/keys", headers=auth)).json()
    assert [k["key"] for k in keys["keys"]] == ["sk-…1111"]
    assert "1 API key(s) added through the admin API name an upstream that is not configured" in caplog.text
    await again.close()


async def test_the_failure_lines_and_the_access_log_name_the_upstream_and_key_that_served(
    aiohttp_client: Any,
    fake: RunningFake,
    second: RunningFake,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    client = await make(aiohttp_client, fake, second, tmp_path, access_log=True)
    fake.state.retry_after = 30
    fake.state.fail_next("rate_limit")  # a 429: the other key of the same upstream
    other_key = await client.post("/v1/chat/completions", json=HELLO)
    fake.state.fail_next("server_error")  # the upstream failed: the next upstream
    moved = await client.post("/v1/chat/completions", json=HELLO)
    assert (other_key.status, moved.status) == (200, 200)
    tokens = [(await response.json())["usage"]["total_tokens"] for response in (other_key, moved)]
    ids = [response.headers["X-Request-Id"] for response in (other_key, moved)]
    failures = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert f"request={ids[0]} upstream=main key=sk-…1111 status=429" in failures[0]
    assert "; retrying with key sk-…2222" in failures[0]
    assert f"request={ids[1]} upstream=main key=sk-…2222 status=500" in failures[1]
    assert "; retrying on local with key sk-…4444" in failures[1]
    access = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert all('"POST /v1/chat/completions" 200' in line for line in access)
    assert access[0].endswith(f"ms upstream=main key=sk-…2222 tokens={tokens[0]}")
    assert access[1].endswith(f"ms upstream=local key=sk-…4444 tokens={tokens[1]}")
    health = await client.get("/healthz")  # no model call: no upstream in its line
    assert health.status == 200
    assert caplog.records[-1].getMessage().endswith("ms")
    assert K1 not in caplog.text and K2 not in caplog.text and L1 not in caplog.text
