"""Small helpers for the Alice API tests: an EventSource-style parser, normal-auth headers."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Callable

import orjson
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]
_LINE = re.compile(r"\r\n|\r|\n")


def parse_sse(text: str) -> list[tuple[str, str]]:
    """``(event type, data)`` per event, following the HTML spec's EventSource algorithm:
    ``data:`` lines of one event joined with ``\\n``, one space after the colon dropped,
    an event dispatched at a blank line (an unterminated last event is not)."""
    events: list[tuple[str, str]] = []
    data: list[str] = []
    event = ""
    for line in _LINE.split(text):
        if line == "":
            if data:
                events.append((event or "message", "\n".join(data)))
            data, event = [], ""
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    return events


def messages(events: list[tuple[str, str]]) -> list[str]:
    return [data for kind, data in events if kind == "message"]


async def read_sse(response: ClientResponse) -> list[tuple[str, str]]:
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return parse_sse(await response.text())


def joined_answer(events: list[tuple[str, str]]) -> str:
    """The answer the stream carried, after checking it ended with ``[DONE]``."""
    data = messages(events)
    assert data[-1] == "[DONE]", events
    return "".join(data[:-1])


def normal_auth(secret: str, nonce: str | None = None) -> dict[str, str]:
    """The headers a browser sends in normal mode: a fresh uuid and sha256(secret + uuid) in hex."""
    nonce = nonce if nonce is not None else str(uuid.uuid4())
    return {"uuid": nonce, "token": hashlib.sha256((secret + nonce).encode()).hexdigest()}


async def wait_until(condition: Callable[[], bool], limit: float = 2.0) -> None:
    """Until ``condition()`` holds (it is the fake's counters: nothing to await on)."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def streaming_conversation(client: Client) -> dict[str, str]:
    """A new streaming (turbo) conversation: its ``conversation`` header."""
    response = await client.post("/chatgpt/createTurbo", data=b'{"stream": true}')
    return {"conversation": await response.text()}


async def sentences(client: Client, headers: dict[str, str]) -> list[str]:
    """The conversation's sentence list (``contextArray``)."""
    response = await client.post("/chatgpt/contextArray", headers=headers)
    assert response.status == 200
    result: list[str] = orjson.loads(await response.read())
    return result
