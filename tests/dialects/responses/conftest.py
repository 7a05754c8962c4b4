"""The real app on a socket, driven with the official ``openai`` SDK (two client keys)."""

from __future__ import annotations

import openai
import pytest
from aiohttp.test_utils import TestServer

from tests.dialects.conftest import CLIENT_KEY, MakeServer

OTHER_KEY = "sk-client-0000000000009999"


def sdk(server: TestServer, key: str = CLIENT_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=key, max_retries=0, timeout=10)


@pytest.fixture
async def server(make_server: MakeServer) -> TestServer:
    return await make_server(auth={"mode": "simple"}, openai={"client_keys": (CLIENT_KEY, OTHER_KEY)})
