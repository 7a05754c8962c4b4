"""W3-style load on the real service: many conversations at once, none loses or mixes up a turn.

The service runs as its own process (``alice-py serve`` with uvloop, aiohttp's client
and the in-memory store), the fake upstream as another, and the test drives them from a third:
``CONVERSATIONS`` conversations of ``TURNS`` turns each, all at once, half of them streamed.
Every question is distinct, and the fake model's answer repeats the question, so an answer
delivered to the wrong conversation, a turn committed twice or dropped, or a stream whose
pieces were reordered shows in what the client received and in ``/chatgpt/contextArray``.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import orjson

from alice_py.fake import CHAT_PREFIX
from tests.support import clean_env, free_port, running_server

CONVERSATIONS = 60
TURNS = 5
TIME_LIMIT = 20.0


@contextmanager
def fake_upstream(chunk_delay: float) -> Iterator[str]:
    """``python -m alice_py.fake`` on a free port; its base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "alice_py.fake", "--port", str(port), "--chunk-delay", str(chunk_delay)]
    proc = subprocess.Popen(argv, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the fake upstream did not start on port {port}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def question(conv: int, turn: int) -> str:
    return f"conversation {conv} turn {turn}: what comes after {conv * 100 + turn}? 第{turn}问"


def streamed_text(body: str) -> str:
    """The answer an Alice SSE stream carried: its ``data:`` pieces joined, up to ``[DONE]``."""
    pieces: list[str] = []
    for event in body.split("\n\n"):
        if not event:
            continue
        assert not event.startswith("event: error"), event
        data = "\n".join(line[6:] for line in event.split("\n") if line.startswith("data: "))
        if data == "[DONE]":
            return "".join(pieces)
        pieces.append(data)
    raise AssertionError(f"the stream did not end with [DONE]: {body[-200:]!r}")


async def converse(session: aiohttp.ClientSession, url: str, conv: int) -> tuple[str, list[str]]:
    """One conversation of TURNS turns, checking each answer; its id and the sentences sent."""
    stream = conv % 2 == 0
    async with session.post(f"{url}/chatgpt/createTurbo", json={"stream": stream}) as response:
        assert response.status == 200, await response.text()
        conv_id = await response.text()
    expected: list[str] = []
    for turn in range(TURNS):
        asked = question(conv, turn)
        headers = {"conversation": conv_id, "Content-Type": "text/plain; charset=utf-8"}
        async with session.post(f"{url}/chatgpt/chat", data=asked.encode(), headers=headers) as response:
            assert response.status == 200, await response.text()
            body = await response.text()
        answer = streamed_text(body) if stream else body
        assert answer == CHAT_PREFIX + asked, (conv, turn, answer)
        expected += [asked, answer]
    return conv_id, expected


async def check_concurrent_conversations(url: str) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        results = await asyncio.gather(*(converse(session, url, conv) for conv in range(CONVERSATIONS)))
        assert len({conv_id for conv_id, _ in results}) == CONVERSATIONS
        for conv_id, expected in results:
            context_array = f"{url}/chatgpt/contextArray"
            async with session.post(context_array, headers={"conversation": conv_id}) as response:
                assert response.status == 200
                assert orjson.loads(await response.read()) == expected


async def test_concurrent_conversations_keep_their_own_turns(tmp_path: Path) -> None:
    started = time.monotonic()
    with fake_upstream(chunk_delay=0.002) as upstream:
        args = ["--auth", "none", "--limit", "0", "--base-url", upstream]
        args += ["--db", f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}"]
        with running_server(args, cwd=tmp_path, env=clean_env(OPENAI_API_KEY="sk-perf-test")) as (url, _):
            await check_concurrent_conversations(url)
    assert time.monotonic() - started < TIME_LIMIT
