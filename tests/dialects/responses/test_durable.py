"""Stored responses live in the database: a restart keeps them; retention ends them."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from aiohttp.test_utils import TestServer

from alice_py.app import create_app
from alice_py.fake import CHAT_PREFIX, FakeState, RunningFake
from tests.dialects.conftest import CLIENT_KEY, make_config
from tests.dialects.responses.conftest import sdk


async def test_a_restart_keeps_stored_responses(
    fake: RunningFake, fake_state: FakeState, tmp_path: Path
) -> None:
    cfg = make_config(fake, tmp_path, auth={"mode": "simple"}, openai={"client_keys": (CLIENT_KEY,)})
    async with TestServer(create_app(cfg)) as first, sdk(first) as client:
        response = await client.responses.create(model="gpt-4o-mini", input="remember me")
    async with TestServer(create_app(cfg)) as second, sdk(second) as client:
        assert (await client.responses.retrieve(response.id)).output_text == CHAT_PREFIX + "remember me"
        await client.responses.create(model="gpt-4o-mini", input="and now?", previous_response_id=response.id)
    assert fake_state.last.body["messages"][0]["content"] == "remember me"


async def test_expired_responses_are_gone(fake: RunningFake, tmp_path: Path) -> None:
    # A retention of a millisecond: expired by the time the next request looks.
    cfg = make_config(
        fake,
        tmp_path,
        auth={"mode": "simple"},
        openai={"client_keys": (CLIENT_KEY,)},
        responses={"retention_days": 1e-8},
    )
    async with TestServer(create_app(cfg)) as server, sdk(server) as client:
        response = await client.responses.create(model="gpt-4o-mini", input="short-lived")
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response.id)


async def test_a_restart_keeps_conversations_and_their_items(
    fake: RunningFake, fake_state: FakeState, tmp_path: Path
) -> None:
    cfg = make_config(fake, tmp_path, auth={"mode": "simple"}, openai={"client_keys": (CLIENT_KEY,)})
    async with TestServer(create_app(cfg)) as first, sdk(first) as client:
        conversation = await client.conversations.create(
            metadata={"a": "b"}, items=[{"type": "message", "role": "user", "content": "kept"}]
        )
        await client.responses.create(model="gpt-4o-mini", input="asked", conversation=conversation.id)
    async with TestServer(create_app(cfg)) as second, sdk(second) as client:
        assert (await client.conversations.retrieve(conversation.id)).metadata == {"a": "b"}
        assert len((await client.conversations.items.list(conversation.id)).data) == 3
        await client.responses.create(model="gpt-4o-mini", input="after", conversation=conversation.id)
    assert [m["content"] for m in fake_state.last.body["messages"]] == [
        "kept",
        "asked",
        CHAT_PREFIX + "asked",
        "after",
    ]
