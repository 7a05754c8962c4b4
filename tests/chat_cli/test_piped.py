"""``alice-py chat`` with piped input: one question per line, only the answers on stdout."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import orjson

from alice_py.fake import CHAT_PREFIX, COMPLETION_PREFIX, FakeState
from tests.chat_cli.conftest import SECRET, Chat
from tests.chat_cli.helpers import chat_env, start_chat


async def test_a_piped_question_prints_just_the_answer(chat: Chat, fake_state: FakeState) -> None:
    result = await chat("hi\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, CHAT_PREFIX + "hi\n", "")
    # The default kind is a streaming chat conversation.
    assert fake_state.last.body["stream"] is True


async def test_one_answer_per_question_in_order_blank_lines_skipped(chat: Chat) -> None:
    result = await chat("first\n\nsecond\n")
    assert result.stdout == f"{CHAT_PREFIX}first\n{CHAT_PREFIX}second\n"
    assert result.returncode == 0


async def test_a_multi_line_answer_streams_back_exactly(chat: Chat, fake_state: FakeState) -> None:
    # A line ending in a backslash continues the question, so it can hold newlines, blank lines
    # included; the server sends such pieces as several data: lines of one event.
    result = await chat("line one\\\n\\\n  line three\\\nlast\n")
    assert result.stdout == CHAT_PREFIX + "line one\n\n  line three\nlast\n"
    assert fake_state.last.body["messages"][-1]["content"] == "line one\n\n  line three\nlast"


async def test_the_prompt_becomes_the_system_message(chat: Chat, fake_state: FakeState) -> None:
    result = await chat("hi\n", "--prompt", "Answer in haiku.")
    assert result.stdout == CHAT_PREFIX + "hi\n"
    assert fake_state.last.body["messages"][0] == {"role": "system", "content": "Answer in haiku."}


async def test_gpt4_prints_the_whole_answer(chat: Chat, fake_state: FakeState) -> None:
    result = await chat("hi\nagain\n", "--kind", "gpt4")
    assert result.stdout == f"{CHAT_PREFIX}hi\n{CHAT_PREFIX}again\n"
    assert not fake_state.last.body.get("stream")
    assert [m["role"] for m in fake_state.last.body["messages"]] == ["system", "user", "assistant", "user"]


async def test_gpt3_is_a_text_completion(chat: Chat, fake_state: FakeState) -> None:
    result = await chat("hi\n", "--kind", "gpt3")
    assert result.stdout == COMPLETION_PREFIX + "hi\n"
    assert fake_state.last.path == "/v1/completions"


async def test_context_and_rollback(chat: Chat) -> None:
    result = await chat("hi\nthere\n/context\n/rollback\n/context\n")
    assert result.returncode == 0
    # The context: the (empty) prompt, a blank line, then one line per sentence.
    assert result.stdout == (
        f"{CHAT_PREFIX}hi\n{CHAT_PREFIX}there\n"
        f"\n\nuser: hi\nassistant: {CHAT_PREFIX}hi\nuser: there\nassistant: {CHAT_PREFIX}there\n"
        "Rollback Succeeded\n"
        f"\n\nuser: hi\nassistant: {CHAT_PREFIX}hi\n"
    )


async def test_rollback_of_an_empty_conversation_shows_the_server_message(chat: Chat) -> None:
    result = await chat("/rollback\nhi\n")
    assert result.stderr == "error: Failed to rollback, dialog is empty\n"
    assert result.stdout == CHAT_PREFIX + "hi\n"  # the session went on
    assert result.returncode == 1  # a script learns that something failed


async def test_regenerate_answers_again_in_place_of_the_old_answer(chat: Chat, fake_state: FakeState) -> None:
    result = await chat("hi\n/regenerate\n/context\n")
    assert result.stdout == (
        f"{CHAT_PREFIX}hi\n{CHAT_PREFIX}hi\n\n\nuser: hi\nassistant: {CHAT_PREFIX}hi\n"
    )
    assert len([r for r in fake_state.requests if r.path == "/v1/chat/completions"]) == 2


async def test_share_prints_the_full_address_of_the_share(chat: Chat, server: str) -> None:
    result = await chat("hi\n/share\n")
    answer, url, end = result.stdout.split("\n")
    assert (answer, end) == (CHAT_PREFIX + "hi", "")
    assert url.startswith(server + "/chatgpt/share/")
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        shared = orjson.loads(await response.read())
    assert shared["SentenceList"] == ["hi", CHAT_PREFIX + "hi"]


async def test_new_starts_a_fresh_conversation(chat: Chat, fake_state: FakeState) -> None:
    result = await chat("hi\n/new\n/context\nagain\n")
    assert result.stdout == f"{CHAT_PREFIX}hi\n\n\n{CHAT_PREFIX}again\n"
    assert result.stderr == ""  # the notice is for terminals only
    assert [m["content"] for m in fake_state.last.body["messages"]] == ["again"]


async def test_help_unknown_commands_and_a_slash_question(chat: Chat) -> None:
    result = await chat("/help\n/frobnicate\n//etc/hosts\n")
    assert "/regenerate" in result.stdout and "/quit" in result.stdout
    assert result.stderr == "error: unknown command /frobnicate; /help lists the commands\n"
    assert result.stdout.endswith(CHAT_PREFIX + "/etc/hosts\n")


async def test_quit_ends_the_session_before_the_rest(chat: Chat) -> None:
    result = await chat("hi\n/quit\nnever asked\n")
    assert (result.returncode, result.stdout) == (0, CHAT_PREFIX + "hi\n")


async def test_an_upstream_failure_is_shown_and_the_session_goes_on(
    chat: Chat, fake_state: FakeState
) -> None:
    fake_state.fail_next("bad_request")
    result = await chat("hi\nagain\n")
    assert "The demo upstream was told to reject this request." in result.stderr
    assert result.stderr.startswith("error: ")
    assert result.stdout == CHAT_PREFIX + "again\n"
    assert result.returncode == 1


async def test_an_error_event_in_the_middle_of_an_answer(chat: Chat, fake_state: FakeState) -> None:
    fake_state.stream_error_after = 3  # the role chunk and two words
    result = await chat("one two three four\n")
    fake_state.stream_error_after = None
    assert result.stdout == "Demo answer \n"
    # The upstream's own text stays in the server's log; the user gets the request id to quote.
    expected = r"error: the model API reported an error \(request id [0-9a-f]{6}-[0-9a-f]+\)\n"
    assert re.fullmatch(expected, result.stderr)
    assert result.returncode == 1


async def test_an_expired_conversation_is_replaced_and_the_question_asked(
    server: str, tmp_path: Path, fake_state: FakeState
) -> None:
    proc = await start_chat(["--url", server, "--token", SECRET], chat_env(tmp_path))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"hi\n/share\n")
    await proc.stdin.drain()
    assert await proc.stdout.readline() == (CHAT_PREFIX + "hi\n").encode()
    conv_id = (await proc.stdout.readline()).decode().split("/chatgpt/share/")[1].strip()
    # The server forgets it, as it does after the conversation has been idle for its TTL.
    headers = {"token": SECRET, "conversation": conv_id}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(f"{server}/chatgpt/finish") as response,
    ):
        assert response.status == 200
    proc.stdin.write(b"again\n")
    proc.stdin.close()
    rest, errors = await asyncio.wait_for(proc.communicate(), 20)
    assert (proc.returncode, rest.decode(), errors) == (0, CHAT_PREFIX + "again\n", b"")
    # A fresh conversation: the question went alone.
    assert [m["content"] for m in fake_state.last.body["messages"]] == ["again"]
