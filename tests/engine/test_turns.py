"""Asking: a turn is committed only when its answer completed, and the lock is always released."""

from __future__ import annotations

import asyncio
import gc

import pytest

from alice_py.engine.presets import Kind
from alice_py.engine.service import ConversationService
from alice_py.errors import BadRequest, ConversationBusy, ConversationNotFound, NotFound
from alice_py.store.memory import MemoryStore
from alice_py.upstream.errors import UpstreamServerError, UpstreamTimeoutError
from tests.engine.conftest import FakeUpstream


async def answered(service: ConversationService, kind: Kind = Kind.TURBO, *, stream: bool = False) -> str:
    """A conversation with one turn: Hi / answer 1."""
    conv = await service.create(kind, stream=stream)
    await (await service.ask(conv.id, "Hi")).collect()
    return conv.id


async def assert_unchanged_and_free(service: ConversationService, conv_id: str) -> None:
    assert await service.context_array(conv_id) == ["Hi", "answer 1"]
    assert not await service.store.is_locked(conv_id)
    # And it can be used again at once.
    text = await (await service.ask(conv_id, "Again")).collect()
    assert await service.context_array(conv_id) == ["Hi", "answer 1", "Again", text]


async def test_a_completed_answer_is_committed(service: ConversationService, upstream: FakeUpstream) -> None:
    conv = await service.create(Kind.TURBO)
    upstream.say("\n\n Hello, world\n")
    answer = await service.ask(conv.id, "Hi")
    assert (answer.conversation_id, answer.streaming, answer.text) == (conv.id, False, None)
    assert [piece async for piece in answer] == [" Hello, world"]
    assert answer.text == " Hello, world"
    assert await service.context_array(conv.id) == ["Hi", " Hello, world"]
    stored = await service.get(conv.id)
    assert stored.leaf == answer.message_id
    assert stored.messages[answer.message_id].parent_id == answer.parent_id
    assert stored.messages[answer.parent_id or ""].content == "Hi"


async def test_a_streaming_conversation_yields_pieces_and_stores_the_trimmed_answer(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.TURBO, stream=True)
    upstream.say("\nHel", "lo\n", "\n")
    answer = await service.ask(conv.id, "Hi")
    assert answer.streaming
    assert [piece async for piece in answer] == ["\nHel", "lo\n", "\n"]
    assert answer.text == "Hello"
    assert await service.context_array(conv.id) == ["Hi", "Hello"]
    assert upstream.requests[0][0] == "stream"


async def test_an_empty_question_is_refused(service: ConversationService, upstream: FakeUpstream) -> None:
    conv = await service.create(Kind.TURBO)
    with pytest.raises(BadRequest, match=r"^Question can not be empty$"):
        await service.ask(conv.id, "")
    assert upstream.requests == []


@pytest.mark.parametrize("operation", ["ask", "regenerate", "rollback", "context", "context_array", "finish"])
async def test_unknown_conversations_are_not_found(service: ConversationService, operation: str) -> None:
    with pytest.raises(ConversationNotFound) as caught:
        if operation == "ask":
            await service.ask("nope1234", "Hi")
        else:
            await getattr(service, operation)("nope1234")
    assert caught.value.message == "failed to find conversation with provided id: nope1234"
    assert caught.value.status == 404


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_error_before_any_piece_changes_nothing(
    service: ConversationService, upstream: FakeUpstream, stream: bool
) -> None:
    conv_id = await answered(service, stream=stream)
    upstream.fail(UpstreamTimeoutError("upstream timed out"))
    answer = await service.ask(conv_id, "Question lost")
    with pytest.raises(UpstreamTimeoutError):
        await answer.collect()
    await assert_unchanged_and_free(service, conv_id)


async def test_a_stream_that_breaks_changes_nothing(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv_id = await answered(service, stream=True)
    upstream.fail(UpstreamServerError("bad gateway"), after=["Half ", "an answer"])
    received: list[str] = []
    with pytest.raises(UpstreamServerError):
        async with await service.ask(conv_id, "Question lost") as answer:
            async for piece in answer:
                received.append(piece)
    assert received == ["Half ", "an answer"]
    await assert_unchanged_and_free(service, conv_id)


async def test_closing_early_changes_nothing_and_ends_the_upstream_request(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv_id = await answered(service, stream=True)
    upstream.say("one ", "two ", "three")
    answer = await service.ask(conv_id, "Question lost")
    assert await anext(answer) == "one "
    assert upstream.open_streams == 1
    await answer.aclose()
    assert upstream.open_streams == 0
    with pytest.raises(RuntimeError, match="closed before it completed"):
        await answer.collect()
    await assert_unchanged_and_free(service, conv_id)


async def test_leaving_async_with_early_changes_nothing(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv_id = await answered(service, stream=True)
    upstream.say("one ", "two ", "three")
    async with await service.ask(conv_id, "Question lost") as answer:
        async for _piece in answer:
            break
    assert upstream.open_streams == 0
    await assert_unchanged_and_free(service, conv_id)


async def test_reading_every_piece_without_reaching_the_end_commits_nothing(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv_id = await answered(service, stream=True)
    upstream.say("only piece")
    async with await service.ask(conv_id, "Question lost") as answer:
        assert await anext(answer) == "only piece"
    await assert_unchanged_and_free(service, conv_id)


async def test_cancelling_the_consumer_changes_nothing(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv_id = await answered(service, stream=True)
    upstream.hold("first ", "second")
    answer = await service.ask(conv_id, "Question lost")
    first = asyncio.Event()

    async def consume() -> None:
        async for _piece in answer:
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert upstream.open_streams == 0
    await assert_unchanged_and_free(service, conv_id)


@pytest.mark.parametrize("pieces_read", [0, 1])
async def test_an_answer_dropped_unfinished_releases_the_conversation(
    service: ConversationService, upstream: FakeUpstream, pieces_read: int
) -> None:
    conv_id = await answered(service, stream=True)
    upstream.say("one ", "two")
    answer = await service.ask(conv_id, "Question lost")
    for _ in range(pieces_read):
        await anext(answer)
    del answer
    gc.collect()
    for _ in range(5):  # asyncio's finalizer closes the dropped generator in a task of its own
        await asyncio.sleep(0)
    assert upstream.open_streams == 0
    await assert_unchanged_and_free(service, conv_id)


async def test_one_request_at_a_time(service: ConversationService, upstream: FakeUpstream) -> None:
    conv_id = await answered(service, stream=True)
    gate = upstream.hold("slow ", "answer")
    answer = await service.ask(conv_id, "Slow question")
    assert await anext(answer) == "slow "
    for attempt in (service.ask(conv_id, "Another"), service.regenerate(conv_id)):
        with pytest.raises(ConversationBusy) as caught:
            await attempt
        assert (caught.value.message, caught.value.status) == ("AI is thinking", 409)
    with pytest.raises(ConversationBusy, match=r"^Failed to rollback, cant rollback while AI is thinking$"):
        await service.rollback(conv_id)
    # Reading is allowed meanwhile, and shows the conversation without the running turn.
    assert await service.context_array(conv_id) == ["Hi", "answer 1"]
    gate.set()
    assert await answer.collect() == "slow answer"
    assert await service.context_array(conv_id) == ["Hi", "answer 1", "Slow question", "slow answer"]
    assert not await service.store.is_locked(conv_id)


async def test_answers_under_a_parent_branch_the_conversation(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    conv = await service.create(Kind.TURBO)
    first = await service.ask(conv.id, "q1")
    await first.collect()
    second = await service.ask(conv.id, "q2")
    await second.collect()
    # Continue from the first answer: the second turn is not part of this history.
    branch = await service.ask(conv.id, "q3", parent_id=first.message_id)
    await branch.collect()
    assert upstream.bodies[-1]["messages"] == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "q3"},
    ]
    assert await service.context_array(conv.id) == ["q1", "answer 1", "q3", "answer 3"]
    # The other branch is still there and continues its own history.
    other = await service.ask(conv.id, "q4", parent_id=second.message_id)
    await other.collect()
    sent = [m["content"] for m in upstream.bodies[-1]["messages"]]
    assert sent == ["q1", "answer 1", "q2", "answer 2", "q4"]
    # Without a parent, the conversation goes on from its latest answer.
    await (await service.ask(conv.id, "q5")).collect()
    assert [m["content"] for m in upstream.bodies[-1]["messages"]] == [
        "q1", "answer 1", "q2", "answer 2", "q4", "answer 4", "q5",
    ]


async def test_an_unknown_parent_is_not_found(service: ConversationService, upstream: FakeUpstream) -> None:
    conv_id = await answered(service)
    with pytest.raises(NotFound, match=r"^failed to find message with provided id: nope$"):
        await service.ask(conv_id, "q", parent_id="nope")
    await assert_unchanged_and_free(service, conv_id)


async def test_finishing_during_an_answer_does_not_bring_the_conversation_back(
    service: ConversationService, store: MemoryStore, upstream: FakeUpstream
) -> None:
    conv_id = await answered(service)
    upstream.say("late answer")
    answer = await service.ask(conv_id, "Question")
    await service.finish(conv_id)
    assert await answer.collect() == "late answer"
    assert await store.get(conv_id) is None
    assert not await store.is_locked(conv_id)


async def test_a_one_off_whole_answer_is_one_call_however_it_is_read(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    upstream.say("\nThe answer\n")
    collected = await service.one_off(Kind.TURBO, question="Q", stream=False)
    assert upstream.requests == []  # nothing is sent before the answer is read
    assert await collected.collect() == "The answer"
    assert await collected.collect() == "The answer"  # read again: no second call
    assert len(upstream.requests) == 1
    upstream.say("Piece by piece")
    iterated = await service.one_off(Kind.TURBO, question="Q", stream=False)
    assert [piece async for piece in iterated] == ["Piece by piece"]
    assert iterated.text == "Piece by piece"
    assert [kind for kind, _ in upstream.requests] == ["call", "call"]


async def test_a_one_off_answer_closed_before_it_is_read_makes_no_call(
    service: ConversationService, upstream: FakeUpstream
) -> None:
    answer = await service.one_off(Kind.TURBO, question="Q", stream=False)
    await answer.aclose()
    with pytest.raises(RuntimeError, match="closed before it completed"):
        await answer.collect()
    assert upstream.requests == []
