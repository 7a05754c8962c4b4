"""The transport under ``OpenAIClient`` against scripted servers on real sockets: through a
proxy, and stream chunks that arrive in one read handed on as one batch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from yarl import URL

from alice_py.fake import CHAT_PREFIX
from alice_py.upstream.client import OpenAIClient, chunk_text, response_text
from alice_py.upstream.errors import UpstreamConnectionError, UpstreamServerError
from alice_py.upstream.types import UpstreamRequest

Answer = Callable[[int], bytes | None]
"""Request number (from 1) -> the raw answer to send, or None: close without answering."""

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


@dataclass
class Server:
    """Counts connections and requests; answers request n with ``answer(n)``."""

    answer: Answer
    close_after_answer: bool = False
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    url: URL = field(default_factory=URL)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                length = next((int(line[15:]) for line in lines if line.startswith(b"content-length:")), 0)
                self.requests.append(head + await reader.readexactly(length))
                raw = self.answer(len(self.requests))
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Serve = Callable[[Answer], Awaitable[Server]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[tuple[asyncio.Server, Server]] = []

    async def start(answer: Answer) -> Server:
        state = Server(answer)
        server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
        servers.append((server, state))
        state.url = URL(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        return state

    yield start
    for server, state in servers:
        server.close()
        for writer in state.writers:
            writer.close()  # ends the handlers still waiting for a request
        await server.wait_closed()


def sized(body: bytes, head: bytes = OK_HEAD) -> bytes:
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def chunked(*parts: bytes, head: bytes = OK_HEAD) -> bytes:
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"



# --- through a proxy --------------------------


async def test_with_a_proxy_requests_go_through_it(session: aiohttp.ClientSession, fake_url: str) -> None:
    # The fake upstream stands in for the proxy: an absolute-form request line reaches it with the
    # path of the real URL, whose host does not even resolve.
    proxy = str(URL(fake_url).origin())
    client = OpenAIClient(session, "http://upstream.invalid/v1", proxy=proxy, connect_timeout=2, timeout=5)
    messages = [{"role": "user", "content": "hi"}]
    request = UpstreamRequest("chat", {"model": "gpt-4o-mini", "messages": messages})
    answer = await client.call("sk-test-0123456789abcdef", request)
    assert response_text("chat", answer) == CHAT_PREFIX + "hi"
    chunks = [chunk async for chunk in client.stream("sk-test-0123456789abcdef", request)]
    assert "".join(chunk_text("chat", chunk) for chunk in chunks) == CHAT_PREFIX + "hi"
    await client.close()


# --- stream batches: what arrived together stays together ------------------------------------------


def sse_answer(*events: str) -> bytes:
    body = "".join(f"data: {event}\n\n" for event in events).encode()
    return sized(body, head=b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")


def delta(text: str, finish_reason: str | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish_reason}]})


async def test_chunks_of_one_read_come_as_one_batch(serve: Serve, session: aiohttp.ClientSession) -> None:
    server = await serve(lambda n: sse_answer(delta("a"), delta("b"), delta("c", "stop"), "[DONE]"))
    client = OpenAIClient(session, str(server.url / "v1"))
    request = UpstreamRequest("chat", {"model": "m", "messages": []})
    batches = [batch async for batch in client.stream_batches("sk-x", request)]
    assert [[chunk_text("chat", chunk) for chunk in batch] for batch in batches] == [["a", "b", "c"]]
    await client.close()


async def test_an_error_after_chunks_of_the_same_read_comes_after_them(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    error = '{"error": {"message": "overloaded", "type": "server_error"}}'
    server = await serve(lambda n: sse_answer(delta("a"), delta("b"), error))
    client = OpenAIClient(session, str(server.url / "v1"))
    request = UpstreamRequest("chat", {"model": "m", "messages": []})
    received: list[str] = []
    with pytest.raises(UpstreamServerError) as caught:
        async for chunk in client.stream("sk-x", request):
            received.append(chunk_text("chat", chunk))
    assert received == ["a", "b"]
    assert caught.value.detail == "overloaded"
    await client.close()


# --- a connection dropped before the answer ---------------------------------------------------------


async def test_a_dropped_connection_is_retried_once_then_fails(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    server = await serve(lambda n: None)  # every request: the connection closes without an answer
    client = OpenAIClient(session, str(server.url / "v1"))
    request = UpstreamRequest("chat", {"model": "m", "messages": []})
    with pytest.raises(UpstreamConnectionError, match="broke off") as caught:
        await client.call("sk-x", request)
    assert "Server disconnected" in caught.value.detail
    assert (len(server.requests), server.connections) == (2, 2)  # the retry came on a new connection
    await client.close()
