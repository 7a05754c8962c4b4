"""``[context] policy = "summarize"`` through the Alice API: exactly what reaches the upstream."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from alice_py.engine.summarize import FELL_BACK, HEAD, QUESTION
from alice_py.fake import FakeState
from alice_py.fake.answers import CHAT_PREFIX, COMPLETION_PREFIX
from alice_py.fake.state import RecordedRequest
from tests.alice.helpers import sentences
from tests.context.conftest import Client, MakeClient, count_chat
from tests.context.test_policies import PROMPT, ask, turbo

SUMMARIZE = {"policy": "summarize", "windows": {"m": 300, "m3": 800}, "reserve": 50}
"""250 tokens of history for the chat model; the gpt3 kind keeps 500 of its 800 for the answer."""
FAKE_SUMMARY = CHAT_PREFIX + QUESTION
"""What the fake model answers the summary call (it repeats the question)."""


def question(index: int) -> str:
    """About 15 tokens; with its answer (the fake repeats it) a turn is about 45."""
    return f"Question {index}: " + " ".join(f"w{index}x{n}" for n in range(5))


def is_summary_call(request: RecordedRequest) -> bool:
    body = request.body or {}
    if "messages" in body:
        return bool(body["messages"][-1] == {"role": "user", "content": QUESTION})
    return str(body.get("prompt", "")).endswith(f"\n{QUESTION}\n")


def model_calls(fake_state: FakeState) -> list[RecordedRequest]:
    return [r for r in fake_state.requests if r.path != "/v1/models"]


async def tree(client: Client, conv: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/chatgpt/tree", headers=conv)
    assert response.status == 200
    result: dict[str, Any] = orjson.loads(await response.read())
    return result


async def info(client: Client, conv: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/chatgpt/contextInfo", headers=conv)
    result: dict[str, Any] = orjson.loads(await response.read())
    return result


def user_turns(system: str) -> list[str]:
    """The questions a summary call's text holds (one ``user: …`` line each)."""
    return [line.removeprefix("user: ") for line in system.split("\n") if line.startswith("user: ")]


async def test_the_oldest_turns_are_sent_as_a_summary_made_once(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(context=SUMMARIZE)
    conv = await turbo(client)
    for index in range(3):
        await ask(client, conv, question(index))
    assert not any(is_summary_call(r) for r in model_calls(fake_state))  # it fits: no extra call
    before = len(fake_state.requests)

    answer, headers = await ask(client, conv, question(3))
    assert answer == CHAT_PREFIX + question(3)
    summary_call, turn = fake_state.requests[before:]
    # The summary call: the Alice summary preset, with the oldest turns, on the same key.
    assert is_summary_call(summary_call)
    body = summary_call.body
    assert body["model"] == "m" and body["temperature"] == 0.7 and body["presence_penalty"] == 1
    assert 0 < body["max_tokens"] <= 250
    assert user_turns(body["messages"][0]["content"]) == [question(0), question(1)]
    assert f"assistant: {CHAT_PREFIX}{question(1)}" in body["messages"][0]["content"]
    assert summary_call.key == turn.key == "sk-test-0000000000001234"
    # The turn: the system prompt survives, then the summary, then the turns it does not stand for.
    sent = turn.body["messages"]
    assert sent == [
        {"role": "system", "content": PROMPT},
        {"role": "system", "content": HEAD + FAKE_SUMMARY},
        {"role": "user", "content": question(2)},
        {"role": "assistant", "content": CHAT_PREFIX + question(2)},
        {"role": "user", "content": question(3)},
    ]
    assert int(headers["X-Context-Tokens"]) == count_chat(sent) <= 250
    assert headers["X-Context-Dropped"] == "0"

    # The next turn reuses it: no second call; the summary and the turns after it.
    before = len(fake_state.requests)
    _, headers = await ask(client, conv, question(4))
    [turn] = fake_state.requests[before:]
    assert turn.body["messages"] == [
        *sent,
        {"role": "assistant", "content": CHAT_PREFIX + question(3)},
        {"role": "user", "content": question(4)},
    ]
    assert int(headers["X-Context-Tokens"]) == count_chat(turn.body["messages"]) <= 250

    # Kept and visible: the tree lists it, anchored at the last answer it stands for; the
    # linear routes and the stored conversation keep every message.
    view = await tree(client, conv)
    [summary] = view["summaries"]
    by_id = {m["id"]: m for m in view["messages"]}
    assert summary["content"] == FAKE_SUMMARY and summary["turns"] == 2 and summary["previous_id"] is None
    assert by_id[summary["anchor_id"]]["content"] == CHAT_PREFIX + question(1)
    assert all(m["role"] in ("user", "assistant") for m in view["messages"])
    assert len(await sentences(client, conv)) == 10
    assert (await info(client, conv))["summarized_turns"] == 2


async def test_summarized_again_with_the_previous_summary(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(context=SUMMARIZE)
    conv = await turbo(client)
    for index in range(12):
        _, headers = await ask(client, conv, question(index))
        assert int(headers["X-Context-Tokens"]) == count_chat(fake_state.last.body["messages"]) <= 250
        assert fake_state.last.body["messages"][0] == {"role": "system", "content": PROMPT}
    calls = [r for r in model_calls(fake_state) if is_summary_call(r)]
    turns = [r for r in model_calls(fake_state) if not is_summary_call(r)]
    assert len(turns) == 12
    assert 2 <= len(calls) < 12 - 2  # not one per turn: each is reused
    # A later summary is made of the previous one and the turns after it, never again of those.
    later = calls[1].body["messages"][0]["content"]
    assert HEAD + FAKE_SUMMARY in later
    first_questions = user_turns(calls[0].body["messages"][0]["content"])
    assert not set(first_questions) & set(user_turns(later))
    view = await tree(client, conv)
    chain = view["summaries"]
    assert len(chain) == len(calls)
    assert [s["previous_id"] for s in chain] == [None, *(s["id"] for s in chain[:-1])]
    assert [s["turns"] for s in chain] == sorted({s["turns"] for s in chain})
    stats = await info(client, conv)
    assert stats["summarized_turns"] == chain[-1]["turns"]
    assert stats["dropped_turns"] == 0
    # The usage counts the summary calls too (the fake counts a token per word of the request).
    assert stats["usage"]["prompt_tokens"] == sum(
        len(" ".join(m["content"] for m in r.body["messages"]).split()) for r in model_calls(fake_state)
    )
    assert len(await sentences(client, conv)) == 24


async def test_a_failed_summary_call_falls_back_to_drop_oldest(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(context=SUMMARIZE)
    conv = await turbo(client)
    for index in range(3):
        await ask(client, conv, question(index))
    fake_state.fail_next("bad_request")
    before = len(fake_state.requests)
    with caplog.at_level(logging.WARNING, logger="alice_py.failures"):
        response = await client.post("/chatgpt/chat", headers=conv, data=question(3).encode())
        assert response.status == 200
        assert await response.text() == CHAT_PREFIX + question(3)
    failed, turn = fake_state.requests[before:]
    assert is_summary_call(failed)
    # drop_oldest: the prompt and the newest whole turns that fit, nothing in place of the rest.
    sent = turn.body["messages"]
    assert sent[0] == {"role": "system", "content": PROMPT}
    assert [m["content"] for m in sent[1:]] == [
        question(1), CHAT_PREFIX + question(1), question(2), CHAT_PREFIX + question(2), question(3)
    ]  # fmt: skip
    assert response.headers["X-Context-Dropped"] == "1"
    request_id = response.headers["X-Request-Id"]
    lines = [r.getMessage() for r in caplog.records if FELL_BACK in r.getMessage()]
    assert len(lines) == 1 and f"request={request_id}" in lines[0]
    assert (await tree(client, conv))["summaries"] == []
    assert (await info(client, conv))["summarized_turns"] == 0

    # The next turn tries again, and this time it is made.
    before = len(fake_state.requests)
    await ask(client, conv, question(4))
    made, turn = fake_state.requests[before:]
    assert is_summary_call(made)
    assert turn.body["messages"][1] == {"role": "system", "content": HEAD + FAKE_SUMMARY}


async def test_the_summary_survives_a_restart(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client(context=SUMMARIZE)
    conv = await turbo(client)
    for index in range(4):
        await ask(client, conv, question(index))
    [summary] = (await tree(client, conv))["summaries"]
    await client.close()  # a clean stop saves the live conversations

    again = await make_client(context=SUMMARIZE)
    assert (await tree(again, conv))["summaries"] == [summary]
    before = len(fake_state.requests)
    await ask(again, conv, question(4))
    [turn] = fake_state.requests[before:]  # reused: no new summary call
    assert turn.body["messages"][1] == {"role": "system", "content": HEAD + FAKE_SUMMARY}


async def test_rollback_and_fork_keep_the_summaries_of_their_path(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(context=SUMMARIZE)
    conv = await turbo(client)
    for index in range(4):
        await ask(client, conv, question(index))
    [summary] = (await tree(client, conv))["summaries"]
    fork = {"conversation": await (await client.post("/chatgpt/fork", headers=conv)).text()}
    assert (await tree(client, fork))["summaries"] == [summary]
    for _ in range(3):  # back before the answer it is anchored at
        assert (await client.post("/chatgpt/rollback", headers=conv)).status == 200
    assert (await tree(client, conv))["summaries"] == []
    assert (await tree(client, fork))["summaries"] == [summary]


async def test_the_gpt3_transcript_is_summarized_with_the_summary_preset(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(context=SUMMARIZE)
    preamble = "The following is a conversation with an AI."
    conv = {"conversation": await (await client.post("/chatgpt/create", data=preamble.encode())).text()}
    for index in range(8):
        _, headers = await ask(client, conv, question(index))
        assert int(headers["X-Context-Tokens"]) <= 300
    calls = [r for r in model_calls(fake_state) if is_summary_call(r)]
    assert calls
    first = calls[0].body
    # Alice's summary call: ``<text>\nTl;dr\n``, completion endpoint, the conversation's model.
    assert calls[0].path == "/v1/completions" and first["model"] == "m3"
    assert first["prompt"].startswith(f"Human: {question(0)}\nAI: ")
    assert "stop" not in first
    prompt = fake_state.last.body["prompt"]
    summary_line = f"{preamble}\n{HEAD}{COMPLETION_PREFIX}{QUESTION}\n\nHuman: "
    assert prompt.startswith(summary_line)
    assert prompt.endswith(f"\nHuman: {question(7)}\nAI: ")
    assert question(0) not in prompt
    assert len(await sentences(client, conv)) == 16


async def test_a_conversation_that_fits_makes_no_summary_call(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(context={**SUMMARIZE, "windows": {"m": 100_000}})
    conv = await turbo(client)
    for index in range(6):
        await ask(client, conv, question(index))
    assert len(model_calls(fake_state)) == 6
    assert len(fake_state.last.body["messages"]) == 12
    assert (await tree(client, conv))["summaries"] == []


async def test_a_long_conversation_stays_under_the_window(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(context={**SUMMARIZE, "windows": {"m": 1000}})
    conv = await turbo(client)
    for index in range(100):
        _, headers = await ask(client, conv, question(index))
        assert headers["X-Context-Dropped"] == "0"
    calls = [r for r in model_calls(fake_state) if is_summary_call(r)]
    turns = [r for r in model_calls(fake_state) if not is_summary_call(r)]
    assert len(turns) == 100 and 0 < len(calls) <= 100 // 3
    assert max(count_chat(r.body["messages"]) for r in turns) <= 950
    assert max(count_chat(r.body["messages"]) + r.body["max_tokens"] for r in calls) <= 1000
    assert all(r.body["messages"][0] == {"role": "system", "content": PROMPT} for r in turns)
    assert len((await tree(client, conv))["summaries"]) == len(calls)
    assert len(await sentences(client, conv)) == 200
