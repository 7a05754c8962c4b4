"""The lean HTTP/1.1 client against scripted servers on real sockets: what it reads, what it
reuses, and how it fails."""

from __future__ import annotations

import asyncio
import gzip
import json
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from alice_py.fake import CHAT_PREFIX
from alice_py.upstream.client import OpenAIClient, chunk_text, response_text
from alice_py.upstream.errors import UpstreamServerError
from alice_py.upstream.http import HttpConnectionError, HttpResponse, HttpTimeout
from alice_py.upstream.pool import HttpPool
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


@pytest.fixture
def pools() -> Iterator[list[HttpPool]]:
    made: list[HttpPool] = []
    yield made
    for pool in made:
        pool.close()


def sized(body: bytes, head: bytes = OK_HEAD) -> bytes:
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def chunked(*parts: bytes, head: bytes = OK_HEAD) -> bytes:
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


def new_pool(server: Server, pools: list[HttpPool], connect_timeout: float = 2.0) -> HttpPool:
    pool = HttpPool(server.url, connect_timeout=connect_timeout)
    pools.append(pool)
    return pool


async def post(pool: HttpPool, body: bytes = b'{"q": 1}', *, limit: float = 2.0) -> HttpResponse:
    head = pool.head("POST", "/v1/chat/completions", {"Content-Type": "application/json"})
    return await pool.request(head, "Authorization: Bearer sk-x", body, limit=limit, streaming=False)


async def post_and_read(pool: HttpPool) -> bytes:
    response = await post(pool)
    body = await response.read()
    response.release()
    return body


async def test_sends_the_request_and_reads_the_answer(serve: Serve, pools: list[HttpPool]) -> None:
    server = await serve(lambda n: sized(b'{"answer": %d}' % n))
    pool = new_pool(server, pools)
    response = await post(pool, b'{"question": "hi"}')
    assert (response.status, response.content_type) == (200, "application/json")
    assert await response.read() == b'{"answer": 1}'
    response.release()
    request = server.requests[0]
    assert request.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.url.port}\r\n".encode() in request
    assert b"Authorization: Bearer sk-x\r\n" in request and b"Content-Length: 18\r\n" in request
    assert request.endswith(b'\r\n\r\n{"question": "hi"}')


async def test_keep_alive_reuses_one_connection(serve: Serve, pools: list[HttpPool]) -> None:
    server = await serve(lambda n: sized(b"answer %d" % n))
    pool = new_pool(server, pools)
    assert [await post_and_read(pool) for _ in range(3)] == [b"answer 1", b"answer 2", b"answer 3"]
    assert server.connections == 1


async def test_concurrent_requests_get_their_own_answers(serve: Serve, pools: list[HttpPool]) -> None:
    server = await serve(lambda n: sized(b"answer"))
    pool = new_pool(server, pools)
    bodies = await asyncio.gather(*(post_and_read(pool) for _ in range(20)))
    assert bodies == [b"answer"] * 20 and len(server.requests) == 20
    before = server.connections
    await post_and_read(pool)
    assert server.connections == before  # served by one of the idle connections


async def test_chunked_gzip_answer_is_decoded(serve: Serve, pools: list[HttpPool]) -> None:
    packed = gzip.compress(b"a compressed answer " * 50)
    head = OK_HEAD + b"Content-Encoding: gzip\r\n"
    server = await serve(lambda n: chunked(packed[:10], packed[10:], head=head))
    pool = new_pool(server, pools)
    assert await post_and_read(pool) == b"a compressed answer " * 50
    assert b"Accept-Encoding" not in server.requests[0]  # only what the caller's head asks for


async def test_interim_answer_is_skipped(serve: Serve, pools: list[HttpPool]) -> None:
    server = await serve(lambda n: b"HTTP/1.1 100 Continue\r\n\r\n" + sized(b"final"))
    pool = new_pool(server, pools)
    assert await post_and_read(pool) == b"final"


async def test_body_until_close_is_read_and_the_connection_not_reused(
    serve: Serve, pools: list[HttpPool]
) -> None:
    server = await serve(lambda n: OK_HEAD + b"\r\nall of it until the end")
    server.close_after_answer = True
    pool = new_pool(server, pools)
    assert await post_and_read(pool) == b"all of it until the end"
    assert await post_and_read(pool) == b"all of it until the end"
    assert server.connections == 2


async def test_connection_close_is_honoured(serve: Serve, pools: list[HttpPool]) -> None:
    server = await serve(lambda n: sized(b"bye", head=OK_HEAD + b"Connection: close\r\n"))
    pool = new_pool(server, pools)
    await post_and_read(pool)
    await post_and_read(pool)
    assert server.connections == 2 and pool.idle_count == 0


async def test_a_closed_idle_connection_is_replaced_once(serve: Serve, pools: list[HttpPool]) -> None:
    # The server drops the kept-alive connection at the second request without a byte of answer,
    # as one whose keep-alive time just ran out would: the request goes out again, once.
    server = await serve(lambda n: None if n == 2 else sized(b"answer %d" % n))
    pool = new_pool(server, pools)
    assert await post_and_read(pool) == b"answer 1"
    assert await post_and_read(pool) == b"answer 3"
    assert server.connections == 2


async def test_a_new_connection_closed_without_answer_fails(serve: Serve, pools: list[HttpPool]) -> None:
    server = await serve(lambda n: None)
    pool = new_pool(server, pools)
    with pytest.raises(HttpConnectionError, match="closed the connection before the end"):
        await post(pool)
    assert len(server.requests) == 1  # not sent again: only a reused connection is


async def test_answer_cut_short_fails(serve: Serve, pools: list[HttpPool]) -> None:
    server = await serve(lambda n: OK_HEAD + b"Content-Length: 100\r\n\r\nonly a part")
    server.close_after_answer = True
    pool = new_pool(server, pools)
    response = await post(pool)
    with pytest.raises(HttpConnectionError):
        await response.read()
    response.close()


async def test_garbage_is_not_http(serve: Serve, pools: list[HttpPool]) -> None:
    server = await serve(lambda n: b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    pool = new_pool(server, pools)
    with pytest.raises(HttpConnectionError, match="not HTTP"):
        await post(pool)


async def test_deadline_covers_the_whole_answer(serve: Serve, pools: list[HttpPool]) -> None:
    server = await serve(lambda n: OK_HEAD + b"Content-Length: 100\r\n\r\nthe start only")
    pool = new_pool(server, pools)
    response = await post(pool, limit=0.1)
    with pytest.raises(HttpTimeout) as caught:
        await response.read()
    assert not caught.value.connecting
    response.close()


async def test_stream_gives_what_has_arrived_and_times_out_on_silence(
    serve: Serve, pools: list[HttpPool]
) -> None:
    server = await serve(lambda n: OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
    pool = new_pool(server, pools)
    head = pool.head("POST", "/v1/chat/completions", {})
    response = await pool.request(head, "Authorization: Bearer sk-x", b"{}", limit=0.1, streaming=True)
    chunks = response.iter_chunks()
    assert await anext(chunks) == b"first"
    with pytest.raises(HttpTimeout):
        await anext(chunks)
    response.close()


async def test_connection_refused(pools: list[HttpPool]) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pool = HttpPool(URL(f"http://127.0.0.1:{port}"), connect_timeout=1.0)
    pools.append(pool)
    with pytest.raises(HttpConnectionError, match=f"cannot connect to 127.0.0.1:{port}"):
        await post(pool)


async def test_line_breaks_in_header_values_are_refused(serve: Serve, pools: list[HttpPool]) -> None:
    server = await serve(lambda n: sized(b"never"))
    pool = new_pool(server, pools)
    with pytest.raises(ValueError, match="line break"):
        pool.head("POST", "/v1", {"X-Evil": "a\r\nInjected: yes"})
    head = pool.head("POST", "/v1", {})
    with pytest.raises(ValueError, match="line break"):
        await pool.request(head, "Authorization: Bearer sk-x\r\nInjected: yes", b"", limit=1, streaming=False)
    assert server.requests == []


def test_https_origin_and_host_header() -> None:
    assert HttpPool(URL("https://api.example.com/v1"), connect_timeout=1).host_header == "api.example.com"
    assert HttpPool(URL("http://[::1]:8080/v1"), connect_timeout=1).host_header == "[::1]:8080"
    idna = HttpPool(URL("https://bücher.example/v1"), connect_timeout=1)
    assert idna.host_header == "xn--bcher-kva.example"
    with pytest.raises(ValueError):
        HttpPool(URL("ftp://example.com"), connect_timeout=1)


# --- through a proxy, OpenAIClient uses the app's aiohttp session instead --------------------------


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
    client.close()


# --- stream batches: what arrived together stays together ------------------------------------------


def sse_answer(*events: str) -> bytes:
    body = "".join(f"data: {event}\n\n" for event in events).encode()
    return sized(body, head=b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")


def delta(text: str) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})


async def test_chunks_of_one_read_come_as_one_batch(serve: Serve, session: aiohttp.ClientSession) -> None:
    server = await serve(lambda n: sse_answer(delta("a"), delta("b"), delta("c"), "[DONE]"))
    client = OpenAIClient(session, str(server.url / "v1"))
    request = UpstreamRequest("chat", {"model": "m", "messages": []})
    batches = [batch async for batch in client.stream_batches("sk-x", request)]
    assert [[chunk_text("chat", chunk) for chunk in batch] for batch in batches] == [["a", "b", "c"]]
    client.close()


async def test_an_error_after_chunks_of_the_same_read_comes_after_them(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    error = '{"error": {"message": "overloaded", "type": "server_error"}}'
    server = await serve(lambda n: sse_answer(delta("a"), delta("b"), error))
    client = OpenAIClient(session, str(server.url / "v1"))
    request = UpstreamRequest("chat", {"model": "m", "messages": []})
    received: list[str] = []
    with pytest.raises(UpstreamServerError, match="overloaded"):
        async for chunk in client.stream("sk-x", request):
            received.append(chunk_text("chat", chunk))
    assert received == ["a", "b"]
    client.close()


# --- https: the certificate is verified against the system's (here: the test's) CAs ---------------


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return key, cert


async def test_https_with_a_trusted_certificate(
    tmp_path: Path, pools: list[HttpPool], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    state = Server(lambda n: sized(b"over tls"))
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        trusting = HttpPool(URL(f"https://localhost:{port}/v1"), connect_timeout=5)
        pools.append(trusting)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the pool makes its context at first use
        assert await post_and_read(trusting) == b"over tls"
        assert await post_and_read(trusting) == b"over tls"
        assert state.connections == 1  # kept alive over TLS too
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
        doubting = HttpPool(URL(f"https://localhost:{port}/v1"), connect_timeout=5)
        pools.append(doubting)
        with pytest.raises(HttpConnectionError, match=r"certificate verify failed"):
            await post(doubting)
    finally:
        for writer in state.writers:
            writer.close()
        server.close()
        await server.wait_closed()
