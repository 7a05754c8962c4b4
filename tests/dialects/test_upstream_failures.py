"""What each dialect's client sees when the model API fails, and what the log keeps.

- An upstream 5xx (a traceback with file paths, JSON or plain text) and a connection
  failure (it names the internal host and port): a short message with the request id;
  the full text is in the log line that names the same id.
- The upstream refusing the service's own key: a 502 that says so (never a 401 that reads
  like the client's key was wrong), then 503 ``No available API keys``; the log names the
  key masked, short keys too.
- An upstream 4xx about the request: its text passes through; on ``/v1`` its whole error
  object (``param``, an integer ``code``, llama.cpp's extra fields).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.failure_log import LOGGER
from alice_py.fake import FakeState
from alice_py.fake.upstream import CONTEXT_OVERFLOW
from tests.dialects.conftest import UPSTREAM_KEY, MakeClient, MakeServer
from tests.support import free_port

Client = TestClient[web.Request, web.Application]
HELLO = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Seen:
    """What a client of one dialect got: the status, the error text it shows, the request id."""

    status: int
    text: str
    request_id: str


async def alice(client: Client) -> Seen:
    conversation = await (await client.post("/chatgpt/createTurbo")).text()
    response = await client.post("/chatgpt/chat", data=b"hi", headers={"conversation": conversation})
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    return Seen(response.status, await response.text(), response.headers["X-Request-Id"])


async def openai_v1(client: Client) -> Seen:
    response = await client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO})
    error = (await response.json())["error"]
    return Seen(response.status, error["message"], response.headers["X-Request-Id"])


async def node(client: Client) -> Seen:
    response = await client.post("/conversation", json={"message": "hi"})
    return Seen(response.status, (await response.json())["error"], response.headers["X-Request-Id"])


async def relay(client: Client) -> Seen:
    response = await client.post("/chat", json={"messages": HELLO})
    lines = [orjson.loads(line) for line in (await response.text()).splitlines()]
    assert lines[0]["error"] is True and lines[-1]["done"] is True
    return Seen(response.status, lines[0]["content"], response.headers["X-Request-Id"])


async def send_message(client: Client) -> Seen:
    response = await client.post("/send_message", data={"prompt": "hi"})
    return Seen(response.status, (await response.json())["message"], response.headers["X-Request-Id"])


Dialect = Callable[[Client], Awaitable[Seen]]
DIALECTS: dict[str, tuple[Dialect, int]] = {
    "alice": (alice, 502),
    "openai": (openai_v1, 502),
    "node": (node, 502),
    "relay": (relay, 502),
    "send_message": (send_message, 500),  # zhuweiyou's chatgpt-api answers 500 to everything
}
"""Each dialect's call, and the status it answers when the model API failed."""


def log_lines(caplog: pytest.LogCaptureFixture, request_id: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and f"request={request_id}" in r.getMessage()
    ]


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)


@pytest.mark.parametrize("kind", ["traceback", "plain_text_error"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_upstream_5xx_text_stays_in_the_log(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture, dialect: str, kind: str
) -> None:
    call, status = DIALECTS[dialect]
    client = await make_client()
    fake_state.fail_next(kind)  # type: ignore[arg-type]
    seen = await call(client)
    assert seen.status == (500 if dialect == "openai" else status)  # /v1 keeps the upstream's 5xx
    assert seen.text == f"the model API failed (HTTP 500) (request id {seen.request_id})"
    [line] = log_lines(caplog, seen.request_id)
    assert "Traceback (most recent call last)" in line and "/srv/llama/venv" in line
    assert "10.20.30.40:8000" in line and "\n" not in line  # the whole body, on one line
    assert "status=500" in line and "key=sk-…1234" in line


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_unreachable_upstream_names_no_address(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, dialect: str
) -> None:
    call, status = DIALECTS[dialect]
    port = free_port()
    client = await make_client(upstream={"base_url": f"http://127.0.0.1:{port}/v1", "connect_timeout": 2})
    seen = await call(client)
    assert seen.status == status
    assert seen.text == f"the model API is unreachable (request id {seen.request_id})"
    [line] = log_lines(caplog, seen.request_id)
    assert f"127.0.0.1:{port}" in line and "status=-" in line


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_refused_service_key_is_a_502_then_no_available_keys(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture, dialect: str
) -> None:
    call, status = DIALECTS[dialect]
    client = await make_client()
    fake_state.fail_next("invalid_key")
    seen = await call(client)
    assert seen.status == status
    assert seen.text == (
        f"the model API refused the service's API key (invalid or revoked) (request id {seen.request_id})"
    )
    [line] = log_lines(caplog, seen.request_id)
    assert "key=sk-…1234" in line and "status=401" in line
    assert "Incorrect API key provided: sk-…1234" in line  # the upstream's text, masked
    assert UPSTREAM_KEY not in caplog.text
    after = await call(client)  # auto_remove disabled the only key
    assert after.status == (500 if dialect == "send_message" else 503)
    assert after.text == "No available API keys"


async def test_quota_refusal_names_the_service_key(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client()
    fake_state.fail_next("quota")
    seen = await alice(client)
    assert seen.status == 502
    assert seen.text.startswith("the model API refused the service's API key (its quota is used up)")


@pytest.mark.parametrize(("key", "masked"), [("abcdefgh", "…efgh"), ("abc", "…c")])
async def test_a_short_refused_key_is_masked_not_hidden(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture, key: str, masked: str
) -> None:
    client = await make_client(upstream={"keys": (key,)})
    fake_state.fail_next("invalid_key")
    seen = await openai_v1(client)
    [line] = log_lines(caplog, seen.request_id)
    assert f"key={masked} " in line
    assert key not in line.replace(masked, "")


async def test_an_upstream_4xx_text_passes_through_every_dialect(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    for call, _ in DIALECTS.values():
        fake_state.fail_next("context_overflow")
        seen = await call(client)
        assert seen.text == CONTEXT_OVERFLOW["message"]


async def test_an_upstream_4xx_error_object_passes_through_intact(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    fake_state.fail_next("context_overflow")
    response = await client.post("/v1/chat/completions", json={"model": "m", "messages": HELLO})
    assert response.status == 400
    error = orjson.loads(await response.read())["error"]
    assert error == {**CONTEXT_OVERFLOW, "param": None}
    assert type(error["code"]) is int  # not "400"
    fake_state.fail_next("bad_request")
    response = await client.post("/v1/chat/completions", json={"model": "m", "messages": HELLO})
    error = (await response.json())["error"]
    assert (error["param"], error["code"], error["type"]) == (
        "temperature",
        "invalid_value",
        "invalid_request_error",
    )


async def test_the_sdk_sees_the_upstream_error_object(make_server: MakeServer, fake_state: FakeState) -> None:
    server = await make_server()
    fake_state.fail_next("context_overflow")
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=0) as sdk:
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body == {**CONTEXT_OVERFLOW, "param": None}
    assert caught.value.type == "exceed_context_size_error"


async def test_a_5xx_in_the_middle_of_a_stream_is_short_too(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    fake_state.stream_error_after = 2
    response = await client.post("/chat", json={"messages": HELLO})
    lines = [orjson.loads(line) for line in (await response.text()).splitlines()]
    request_id = response.headers["X-Request-Id"]
    assert lines[-2] == {
        "done": False,
        "error": True,
        "content": f"the model API reported an error (request id {request_id})",
    }
    [line] = log_lines(caplog, request_id)
    assert "The demo upstream failed in the middle of the answer." in line
