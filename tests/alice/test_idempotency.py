"""``Idempotency-Key`` on chat, regenerate and edit: a repeat does not call the model again."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.fake import FakeState
from tests.alice.helpers import messages, parse_sse, wait_until
from tests.alice.test_tree import answer_to, by_content, chat, new_turbo, post, tree

Client = TestClient[web.Request, web.Application]


def model_calls(fake_state: FakeState) -> int:
    return sum(1 for request in fake_state.requests if request.path.endswith("/completions"))


async def test_a_repeated_chat_is_answered_without_the_model(client: Client, fake_state: FakeState) -> None:
    conv = await new_turbo(client)
    first = await post(client, "chat", conv, b"q1", **{"Idempotency-Key": "k-1"})
    assert first == (200, answer_to("q1"))
    assert await post(client, "chat", conv, b"q1", **{"Idempotency-Key": "k-1"}) == first
    assert model_calls(fake_state) == 1
    assert len((await tree(client, conv))["messages"]) == 2  # one turn, not two

    await post(client, "chat", conv, b"q2", **{"Idempotency-Key": "k-2"})
    # An older key still answers its own turn, not the latest one.
    assert await post(client, "chat", conv, b"q1", **{"Idempotency-Key": "k-1"}) == first
    assert model_calls(fake_state) == 2


async def test_without_a_key_a_repeat_is_a_new_turn(client: Client, fake_state: FakeState) -> None:
    conv = await new_turbo(client)
    await chat(client, conv, "q1")
    await chat(client, conv, "q1")
    assert model_calls(fake_state) == 2


async def test_a_repeated_stream_sends_the_whole_answer_as_one_event(
    client: Client, fake_state: FakeState
) -> None:
    conv = await new_turbo(client, stream=True)
    headers = {"conversation": conv, "Idempotency-Key": "s-1"}
    first = await client.post("/chatgpt/chat", data=b"tell me more", headers=headers)
    pieces = messages(parse_sse(await first.text()))
    assert len(pieces) > 2  # the fake streams word by word
    again = await client.post("/chatgpt/chat", data=b"tell me more", headers=headers)
    assert again.status == 200 and again.headers["Content-Type"].startswith("text/event-stream")
    assert messages(parse_sse(await again.text())) == [answer_to("tell me more"), "[DONE]"]
    assert model_calls(fake_state) == 1


async def test_a_repeat_while_the_first_runs_is_409_then_answered(
    client: Client, fake_state: FakeState
) -> None:
    conv = await new_turbo(client)
    fake_state.delay = 0.3
    running = asyncio.create_task(post(client, "chat", conv, b"slow", **{"Idempotency-Key": "k"}))
    await wait_until(lambda: model_calls(fake_state) == 1)
    assert await post(client, "chat", conv, b"slow", **{"Idempotency-Key": "k"}) == (409, "AI is thinking")
    assert (await running) == (200, answer_to("slow"))
    fake_state.delay = 0
    assert await post(client, "chat", conv, b"slow", **{"Idempotency-Key": "k"}) == (200, answer_to("slow"))
    assert model_calls(fake_state) == 1


async def test_a_kept_turn_is_replayed_even_while_another_runs(client: Client, fake_state: FakeState) -> None:
    conv = await new_turbo(client)
    await post(client, "chat", conv, b"q1", **{"Idempotency-Key": "k1"})
    fake_state.delay = 0.3
    running = asyncio.create_task(post(client, "chat", conv, b"q2"))
    await wait_until(lambda: model_calls(fake_state) == 2)
    assert await post(client, "chat", conv, b"q1", **{"Idempotency-Key": "k1"}) == (200, answer_to("q1"))
    assert (await running)[0] == 200


async def test_the_same_key_with_another_body_is_422(client: Client, fake_state: FakeState) -> None:
    conv = await new_turbo(client)
    await post(client, "chat", conv, b"q1", **{"Idempotency-Key": "k"})
    assert await post(client, "chat", conv, b"q1 changed", **{"Idempotency-Key": "k"}) == (
        422,
        "Idempotency-Key was already used with a different request on this conversation",
    )
    assert await post(client, "regenerate", conv, **{"Idempotency-Key": "k"}) == (
        422,
        "Idempotency-Key was already used with a different request on this conversation",
    )
    assert model_calls(fake_state) == 1
    assert len((await tree(client, conv))["messages"]) == 2


async def test_keys_are_scoped_to_their_conversation(client: Client, fake_state: FakeState) -> None:
    one, two = await new_turbo(client), await new_turbo(client)
    await post(client, "chat", one, b"q", **{"Idempotency-Key": "shared"})
    assert await post(client, "chat", two, b"q", **{"Idempotency-Key": "shared"}) == (200, answer_to("q"))
    assert model_calls(fake_state) == 2
    assert len((await tree(client, two))["messages"]) == 2


async def test_regenerate_and_edit_honour_the_key(client: Client, fake_state: FakeState) -> None:
    conv = await new_turbo(client)
    await chat(client, conv, "q1")
    regenerated = await post(client, "regenerate", conv, **{"Idempotency-Key": "r"})
    assert await post(client, "regenerate", conv, **{"Idempotency-Key": "r"}) == regenerated
    q1 = by_content(await tree(client, conv))["q1"]["id"]
    edited = await post(client, "edit", conv, b"q1b", message=q1, **{"Idempotency-Key": "e"})
    assert edited == (200, answer_to("q1b"))
    assert await post(client, "edit", conv, b"q1b", message=q1, **{"Idempotency-Key": "e"}) == edited
    assert model_calls(fake_state) == 3
    assert len((await tree(client, conv))["messages"]) == 5  # q1, two answers, q1b and its answer


async def test_a_malformed_key_is_400(client: Client, fake_state: FakeState) -> None:
    conv = await new_turbo(client)
    assert await post(client, "chat", conv, b"q", **{"Idempotency-Key": "x" * 256}) == (
        400,
        "Idempotency-Key must be 1 to 255 printable ASCII characters",
    )
    assert model_calls(fake_state) == 0
