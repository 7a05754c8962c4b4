"""The real process across restarts: SIGTERM drains and saves, a restart resumes, kill -9 loses
at most the write-behind window, expired conversations stay gone, and the ttl runs on."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from alice_py.engine.tree import Conversation
from alice_py.fake import CHAT_PREFIX, RunningFake
from tests.alice.helpers import joined_answer, messages, parse_sse
from tests.persistence.helpers import Alice, rewrite_rows, running_alice, saved_rows

LONG_QUESTION = " ".join(f"word{n}" for n in range(40))


def answer_to(question: str) -> str:
    return CHAT_PREFIX + question


async def test_a_conversation_continues_after_a_restart(tmp_path: Path, fake: RunningFake) -> None:
    async with running_alice(tmp_path, fake) as alice:
        conv = await alice.create_turbo(stream=False)
        first = await alice.chat(conv, "What is a cat?")
        second = await alice.chat(conv, "And a dog?")
        await alice.stop()
    assert "saved 1 live conversation(s)" in alice.log

    async with running_alice(tmp_path, fake) as alice:
        assert await alice.sentences(conv) == ["What is a cat?", first, "And a dog?", second]
        status, context = await alice.post("context", conv=conv)
        assert status == 200
        assert "user: What is a cat?" in context and "user: And a dog?" in context
        assert await alice.chat(conv, "And a bird?") == answer_to("And a bird?")
        assert fake.state.last.body["messages"] == [
            {"role": "user", "content": "What is a cat?"},
            {"role": "assistant", "content": first},
            {"role": "user", "content": "And a dog?"},
            {"role": "assistant", "content": second},
            {"role": "user", "content": "And a bird?"},
        ]
        await alice.stop()


async def _refused(url: str) -> bool:
    async with aiohttp.ClientSession() as fresh:
        try:
            async with fresh.get(url + "/healthz"):
                return False
        except aiohttp.ClientConnectionError:
            return True


async def test_a_stream_running_at_sigterm_finishes_then_is_saved(tmp_path: Path, fake: RunningFake) -> None:
    question = "tell me about the sea and the sky"
    async with running_alice(tmp_path, fake) as alice:
        conv = await alice.create_turbo(stream=True)
        fake.state.chunk_delay = 0.05  # about 0.8 s of answer
        headers = {"conversation": conv}
        async with alice.session.post(f"{alice.url}/chatgpt/chat", data=question, headers=headers) as resp:
            assert resp.status == 200
            first = await resp.content.readuntil(b"\n\n")
            alice.signal(signal.SIGTERM)
            await alice.wait_for_log("request(s) in progress")
            assert await _refused(alice.url), "a new connection got in while draining"
            rest = await resp.read()
        assert await alice.stopped() == 0
    assert joined_answer(parse_sse((first + rest).decode())) == answer_to(question)

    fake.state.chunk_delay = 0
    async with running_alice(tmp_path, fake) as alice:
        assert await alice.sentences(conv) == [question, answer_to(question)]
        await alice.stop()


async def _start_long_stream(alice: Alice, fake: RunningFake, conv: str) -> aiohttp.ClientResponse:
    """A stream of about 4 s, once its first piece has arrived."""
    fake.state.chunk_delay = 0.1
    resp = await alice.session.post(
        f"{alice.url}/chatgpt/chat", data=LONG_QUESTION, headers={"conversation": conv}
    )
    assert resp.status == 200
    await resp.content.readuntil(b"\n\n")
    return resp


async def _rest(resp: aiohttp.ClientResponse) -> str:
    """What arrives until the stream ends (cut off or not)."""
    received = b""
    try:
        async for chunk in resp.content.iter_any():
            received += chunk
    except aiohttp.ClientPayloadError:
        pass
    finally:
        resp.release()
    return received.decode(errors="replace")


async def _one_turn_then_cut_off(tmp_path: Path, fake: RunningFake, signals: int, **env: str) -> str:
    """A conversation with one turn, then a long answer still running at shutdown; its id."""
    async with running_alice(tmp_path, fake, **env) as alice:
        conv = await alice.create_turbo(stream=True)
        await alice.chat(conv, "hello")
        resp = await _start_long_stream(alice, fake, conv)
        started = time.monotonic()
        alice.signal()
        for _ in range(signals - 1):
            await alice.wait_for_log("request(s) in progress")
            alice.signal()
        rest = await _rest(resp)
        assert await alice.stopped() == 0, alice.log
        assert time.monotonic() - started < 3.0  # well before the answer's 4 s
    assert "[DONE]" not in messages(parse_sse(rest))
    assert "cancelling 1 request(s) still in progress" in alice.log
    return conv


async def _resumes_as_before_the_cut(tmp_path: Path, fake: RunningFake, conv: str) -> None:
    fake.state.chunk_delay = 0
    async with running_alice(tmp_path, fake) as alice:
        assert await alice.sentences(conv) == ["hello", answer_to("hello")]
        # Not left locked either: the next question is answered.
        status, body = await alice.post("chat", "again", conv)
        assert status == 200
        assert joined_answer(parse_sse(body)) == answer_to("again")
        await alice.stop()


async def test_a_stream_past_the_drain_timeout_is_cancelled_and_the_turn_not_kept(
    tmp_path: Path, fake: RunningFake
) -> None:
    conv = await _one_turn_then_cut_off(tmp_path, fake, 1, ALICE_SERVER_DRAIN_TIMEOUT="0.2")
    await _resumes_as_before_the_cut(tmp_path, fake, conv)


async def test_a_second_signal_cancels_at_once_and_still_saves(tmp_path: Path, fake: RunningFake) -> None:
    conv = await _one_turn_then_cut_off(tmp_path, fake, 2, ALICE_SERVER_DRAIN_TIMEOUT="30")
    await _resumes_as_before_the_cut(tmp_path, fake, conv)


async def _until_saved(tmp_path: Path, conv: str, sentences: int | None) -> None:
    """Until the database holds ``conv`` with that many sentences (None: until it is gone)."""
    async with asyncio.timeout(5):
        while True:
            row = (await saved_rows(tmp_path)).get(conv)
            if sentences is None and row is None:
                return
            if row is not None and Conversation.from_json(row.data).sentence_count() == sentences:
                return
            await asyncio.sleep(0.1)


async def test_kill_9_loses_nothing_older_than_the_write_behind_interval(
    tmp_path: Path, fake: RunningFake
) -> None:
    async with running_alice(tmp_path, fake, ALICE_CONVERSATIONS_WRITE_BEHIND="0.3") as alice:
        kept = await alice.create_turbo(stream=False)
        first = await alice.chat(kept, "one")
        finished = await alice.create_turbo(stream=False)
        await alice.chat(finished, "bye")
        await _until_saved(tmp_path, finished, 2)
        assert (await alice.post("finish", conv=finished))[0] == 200
        second = await alice.chat(kept, "two")
        await _until_saved(tmp_path, kept, 4)
        await _until_saved(tmp_path, finished, None)
        alice.signal(signal.SIGKILL)
        assert await alice.stopped() == -signal.SIGKILL

    async with running_alice(tmp_path, fake) as alice:
        assert await alice.sentences(kept) == ["one", first, "two", second]
        assert await alice.sentences(finished) is None
        await alice.stop()


async def test_expired_conversations_stay_gone_and_the_ttl_runs_on(tmp_path: Path, fake: RunningFake) -> None:
    async with running_alice(tmp_path, fake) as alice:  # ttl 1800 s; 900 s with at most 2 sentences
        used, idle = [await alice.create_turbo(stream=False) for _ in range(2)]
        for conv in (used, idle):
            await alice.chat(conv, "one")
            await alice.chat(conv, "two")
        expired = await alice.create_turbo(stream=False)
        await alice.stop()

    # As if their last use had been 10 minutes (used, idle) and 1000 s (expired) earlier.
    before = await saved_rows(tmp_path)
    back = {used: 600.0, idle: 600.0, expired: 1000.0}
    shifted = [
        dataclasses.replace(row, last_active=row.last_active - back[id], expires_at=row.expires_at - back[id])
        for id, row in before.items()
    ]
    await rewrite_rows(tmp_path, shifted)

    async with running_alice(tmp_path, fake) as alice:
        assert "resumed 2 saved conversation(s)" in alice.log
        assert await alice.sentences(expired) is None
        assert await alice.sentences(used) is not None  # a use: its ttl starts again
        used_at = time.time()
        await alice.stop()

    after = await saved_rows(tmp_path)
    assert expired not in after
    # Not touched since the restart: it still expires 1800 s after its use 10 minutes earlier.
    assert after[idle].expires_at == pytest.approx(before[idle].expires_at - 600, abs=1.0)
    assert after[used].expires_at == pytest.approx(used_at + 1800, abs=2.0)
