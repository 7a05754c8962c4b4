"""The real app against the fake upstream, with small context windows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.app import create_app
from alice_py.engine.tokens import encoding
from alice_py.fake import RunningFake
from tests.support import app_config

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

SMALL = {"policy": "drop_oldest", "windows": {"m": 300, "m3": 300}, "reserve": 50}
"""A 300-token window with 50 kept for the answer: 250 tokens of history."""


def count_chat(messages: list[dict[str, Any]]) -> int:
    """OpenAI's count of a chat request, with tiktoken directly (o200k_base, the default)."""
    enc = encoding("o200k_base")
    return 3 + sum(
        3 + len(enc.encode_ordinary(m["role"])) + len(enc.encode_ordinary(m["content"])) for m in messages
    )


@pytest.fixture
def make_client(aiohttp_client: Any, fake: RunningFake, tmp_path: Path) -> MakeClient:
    async def make(**sections: dict[str, Any]) -> Client:
        sections.setdefault("context", SMALL)
        sections.setdefault("models", {"turbo": "m", "gpt4": "m", "gpt3": "m3"})
        cfg = app_config(fake.url, tmp_path, upstream_key="sk-test-0000000000001234", **sections)
        client: Client = await aiohttp_client(create_app(cfg))
        return client

    return make
