"""Fixtures: the real app (``create_app``) on a real socket, answering from the fake upstream,
and ``chat``: the ``alice-py chat`` command run as a subprocess against it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from alice_py.app import create_app
from alice_py.config import Config
from alice_py.fake import RunningFake
from tests.chat_cli.helpers import ChatResult, chat_env, run_chat
from tests.support import app_config

UPSTREAM_KEY = "sk-test-0000000000005678"
SECRET = "s3cret"

MakeServer = Callable[..., Awaitable[str]]
Chat = Callable[..., Awaitable[ChatResult]]


def make_config(fake: RunningFake, tmp_path: Path, **sections: dict[str, Any]) -> Config:
    """Simple auth with ``SECRET`` and no rate limit unless a test asks otherwise."""
    return app_config(
        fake.url, tmp_path, upstream_key=UPSTREAM_KEY, auth_mode="simple", secret=SECRET, **sections
    )


@pytest.fixture
def make_server(aiohttp_server: Any, fake: RunningFake, tmp_path: Path) -> MakeServer:
    """``url = await make_server(auth={"mode": "normal"})``: the service's base URL."""

    async def make(**sections: dict[str, Any]) -> str:
        server: TestServer = await aiohttp_server(create_app(make_config(fake, tmp_path, **sections)))
        return str(server.make_url("")).rstrip("/")

    return make


@pytest.fixture
async def server(make_server: MakeServer) -> str:
    return await make_server()


@pytest.fixture
def chat(server: str, tmp_path: Path) -> Chat:
    """``await chat("hi\\n", "--kind", "gpt4")``: the client against ``server``, input piped."""

    async def run(stdin: str, *args: str) -> ChatResult:
        return await run_chat(["--url", server, "--token", SECRET, *args], stdin, chat_env(tmp_path))

    return run
