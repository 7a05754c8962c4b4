"""Malformed input on every route: always a 4xx with a message, never a 500 or a dropped connection."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.web.errors import INTERNAL_ERROR
from tests.alice.conftest import MakeClient

Client = TestClient[web.Request, web.Application]

MAX_BODY = 4096
POST_ROUTES = [
    "create", "createTurbo", "createGPT4", "createRolePlay", "chat", "regenerate", "rollback",
    "context", "contextArray", "finish", "store", "quickAnswer", "summary",
    "tree", "edit", "checkout", "fork",
]  # fmt: skip
BAD_BODIES = [
    b"\xff\xfe\x80 not utf-8",
    b"\xc3\x28",
    b"[]",
    b"123",
    b'"just a string"',
    b"{",
    b'{"prompt": 1, "stream": "yes"}',
    b'{"stream": 1}',
    b'{"human_name": 5, "ai_name": "x", "prompt": "y"}',
    b'{"human_name": "h", "ai_name": null, "prompt": "y"}',
    b'{"question": ["x"]}',
    b'{"question": "q", "examples": "x"}',
    b'{"question": "q", "examples": [1, "a"]}',
    b'{"question": "q", "convType": 3}',
    b'{"question": "q", "prompt": {}}',
    b'{"question": "q", "stream": "no"}',
    b'{"prompt": "\\ud800 lone surrogate"}',
    b"[" * 5000 + b"]" * 5000,
    b"\x00\x01\x02",
]


@pytest.fixture
async def fuzz_client(make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> Client:
    caplog.set_level(logging.ERROR)
    return await make_client(server={"max_body": MAX_BODY})


def assert_no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing unexpected in the service (aiohttp's parser logs the requests it rejects itself)."""
    errors = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR and record.name.startswith("alice_py")
    ]
    assert errors == []


async def check(status: int, body: str, what: str) -> None:
    assert status < 500, f"{what}: {status} {body}"
    if status >= 400:
        assert body and body != INTERNAL_ERROR, what


async def test_bad_bodies_on_every_route(fuzz_client: Client, caplog: pytest.LogCaptureFixture) -> None:
    conv_id = await (await fuzz_client.post("/chatgpt/createTurbo")).text()
    for route in POST_ROUTES:
        for headers in ({}, {"conversation": conv_id}):
            for body in BAD_BODIES:
                response = await fuzz_client.post(f"/chatgpt/{route}", data=body, headers=headers)
                await check(response.status, await response.text(), f"{route} {headers} {body[:40]!r}")
    assert_no_errors_logged(caplog)


async def test_bad_json_is_named(fuzz_client: Client) -> None:
    turbo = "Failed to read request body"
    cases = [
        ("createTurbo", b'{"prompt": 1}', f"{turbo}: field 'prompt' must be a string, got a number"),
        ("createTurbo", b"[]", f"{turbo}: expected a JSON object, got an array"),
        ("createRolePlay", b'{"ai_name": "a", "prompt": "p"}', "field 'human_name' is required (a string)"),
        ("createRolePlay", b'{"human_name": "h", "ai_name": 2, "prompt": "p"}',
         "field 'ai_name' must be a string, got a number"),
        ("quickAnswer", b'{"question": "q", "examples": ["a", 1]}',
         "field 'examples[1]' must be a string, got a number"),
        ("quickAnswer", b'{"question": "q", "stream": "yes"}',
         "field 'stream' must be true or false, got a string"),
        ("create", b"\xff", "The request body is not valid UTF-8 text (byte 0)"),
    ]  # fmt: skip
    for route, body, message in cases:
        response = await fuzz_client.post(f"/chatgpt/{route}", data=body)
        assert (response.status, await response.text()) == (400, message)


async def test_huge_bodies_get_413_with_a_message(fuzz_client: Client) -> None:
    for route in ("create", "createTurbo", "createGPT4", "createRolePlay", "chat", "quickAnswer", "summary"):
        response = await fuzz_client.post(f"/chatgpt/{route}", data=b"x" * (MAX_BODY + 1))
        assert response.status == 413, route
        assert await response.text() == f"Request body too large: at most {MAX_BODY} bytes are accepted"


async def raw_request(client: Client, head: bytes, body: bytes = b"") -> tuple[int, str]:
    """Bytes no well-behaved client would send; the status and body of the answer."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    # aiohttp's own parser answers (HTTP/1.0 400) for bytes HTTP forbids in a header
    assert status_line.startswith(b"HTTP/1."), raw[:200]
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")


ODD_HEADERS = [
    b"conversation: \xff\xfe\x80",
    b"conversation: " + b"A" * 4000,
    b"conversation: ../../etc/passwd",
    b"conversation:    ",
    b"token: \xff\xfe",
    b"uuid: \xc3\x28",
    b"uuid: " + "ü".encode() * 30,
    b"settings: \xff",
    b"settings: FriendChat\x7f",
    b"message: \xff\xfe\x80",
    b"message: " + b"m" * 4000,
    b"Idempotency-Key: \xff\xfe",
    b"Idempotency-Key: " + b"k" * 4000,
    b"Accept: \xff/\xff",
    b"Origin: \xff",
    b"Access-Control-Request-Headers: \xff, ,,x y, token",
    b"Content-Type: application/json; charset=\xff",
]


@pytest.mark.parametrize("mode", ["none", "simple", "normal"])
async def test_odd_headers(make_client: MakeClient, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    client = await make_client(auth={"mode": mode})
    body = "你好".encode()
    for route in [*POST_ROUTES, "share/abc"]:
        method = b"GET" if route.startswith("share") else b"POST"
        for header in ODD_HEADERS:
            head = (
                method
                + b" /chatgpt/"
                + route.encode()
                + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
                + header
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
            )
            status, text = await raw_request(client, head, body)
            await check(status, text, f"{mode} {route} {header[:40]!r}")
    assert_no_errors_logged(caplog)


async def test_chunked_body_over_the_limit(fuzz_client: Client) -> None:
    chunk = b"x" * 1000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(6)) + b"0\r\n\r\n"
    head = b"POST /chatgpt/create HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n"
    status, text = await raw_request(fuzz_client, head, chunks)
    assert (status, text) == (413, f"Request body too large: at most {MAX_BODY} bytes are accepted")
