"""A conversation busy with another answer: ``AI is thinking`` is shown, unless our own answer was
just stopped, in which case the client waits for the server to let go of it."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest

from alice_py.chat.client import AliceClient, Credentials
from alice_py.chat.session import ChatSession, Console
from alice_py.fake import CHAT_PREFIX, FakeState
from tests.chat_cli.conftest import SECRET


@pytest.fixture
async def session(server: str) -> AsyncIterator[ChatSession]:
    console = Console(io.StringIO(), io.StringIO(), chatty=False)
    chat = ChatSession(AliceClient.open(server, Credentials("simple", SECRET)), console)
    await chat.start()
    try:
        yield chat
    finally:
        await chat.close()


async def hold(server: str, conv_id: str, started: asyncio.Event) -> None:
    """Another client's answer on the same conversation, read slowly to its end."""
    headers = {"token": SECRET, "conversation": conv_id}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(f"{server}/chatgpt/chat", data="elsewhere") as response,
    ):
        assert response.status == 200
        await response.content.readany()
        started.set()
        await response.read()


def output(session: ChatSession) -> tuple[str, str]:
    out, err = session.console.out, session.console.err
    assert isinstance(out, io.StringIO) and isinstance(err, io.StringIO)
    return out.getvalue(), err.getvalue()


async def test_busy_conversation_shows_the_message_and_goes_on(
    session: ChatSession, server: str, fake_state: FakeState
) -> None:
    fake_state.chunk_delay = 0.02
    started = asyncio.Event()
    other = asyncio.create_task(hold(server, session.conv_id, started))
    await started.wait()
    await session.handle("hi")
    assert output(session) == ("", "error: AI is thinking\n")
    await other
    await session.handle("hi")
    assert output(session)[0] == CHAT_PREFIX + "hi\n"


async def test_after_a_stopped_answer_the_client_waits_for_the_server(
    session: ChatSession, server: str, fake_state: FakeState
) -> None:
    fake_state.chunk_delay = 0.02
    started = asyncio.Event()
    other = asyncio.create_task(hold(server, session.conv_id, started))
    await started.wait()
    session.note_stopped()
    await session.handle("hi")
    assert output(session) == (CHAT_PREFIX + "hi\n", "")
    assert other.done()
