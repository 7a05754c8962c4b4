"""LangChain's ``ChatOpenAI(use_responses_api=True)`` against the service, unchanged: a turn, then
the next one continued on the server through ``previous_response_id``."""

from __future__ import annotations

from aiohttp.test_utils import TestServer
from langchain_core.messages import AIMessage, HumanMessage
from langchain_openai import ChatOpenAI

from alice_py.fake import CHAT_PREFIX, FakeState
from tests.dialects.conftest import CLIENT_KEY
from tests.dialects.responses.conftest import sdk


async def test_langchain_keeps_its_conversation_on_the_server(
    server: TestServer, fake_state: FakeState
) -> None:
    chat = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=str(server.make_url("/v1")),
        api_key=CLIENT_KEY,  # type: ignore[arg-type]
        use_responses_api=True,
        use_previous_response_id=True,
        max_retries=0,
    )
    first = await chat.ainvoke([HumanMessage("What is a cat?")])
    assert isinstance(first, AIMessage)
    assert first.text == CHAT_PREFIX + "What is a cat?"
    second = await chat.ainvoke([HumanMessage("What is a cat?"), first, HumanMessage("And a dog?")])
    assert second.text == CHAT_PREFIX + "And a dog?"
    # LangChain sent only the new question with previous_response_id: the stored response's own
    # input is that one message, and the history the model saw came from the first response.
    async with sdk(server) as client:
        items = await client.responses.input_items.list(second.response_metadata["id"])
    assert [item.content[0].text for item in items.data] == ["And a dog?"]  # type: ignore[union-attr]
    sent = fake_state.last.body["messages"]
    assert [m["content"] for m in sent] == ["What is a cat?", CHAT_PREFIX + "What is a cat?", "And a dog?"]
