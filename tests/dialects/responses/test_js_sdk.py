"""The official JavaScript SDK (``npm install openai``, node from Debian) against /v1/responses:
create, ``previous_response_id`` and a stream."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from alice_py.fake import CHAT_PREFIX, FakeState
from tests.dialects.conftest import CLIENT_KEY

HERE = Path(__file__).parent / "js"


async def run(*args: str, env: dict[str, str] | None = None, limit: float = 180) -> str:
    process = await asyncio.create_subprocess_exec(
        *args, cwd=HERE, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(limit):
        out, err = await process.communicate()
    assert process.returncode == 0, f"{args[0]} failed: {err.decode()[-2000:]}"
    return out.decode()


@pytest.fixture
async def js_sdk() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed: apt-get install nodejs npm")
    if not (HERE / "node_modules" / "openai").is_dir():
        await run("npm", "install", "--no-audit", "--no-fund", "--silent")


async def test_js_sdk_create_continue_and_stream(
    js_sdk: None, server: TestServer, fake_state: FakeState
) -> None:
    env = {**os.environ, "BASE_URL": str(server.make_url("/v1")), "API_KEY": CLIENT_KEY}
    result = json.loads((await run("node", "responses.mjs", env=env, limit=60)).strip().splitlines()[-1])
    assert result["first"] == CHAT_PREFIX + "Hello from JS"
    assert result["second"] == CHAT_PREFIX + "Second turn"
    assert result["secondPrevious"] is True
    assert result["types"][0] == "response.created" and result["types"][-1] == "response.completed"
    assert result["sequence"] == list(range(len(result["sequence"])))
    assert result["streamed"] == CHAT_PREFIX + "Streamed turn"
    assert [m["content"] for m in fake_state.last.body["messages"]] == [
        "Hello from JS",
        CHAT_PREFIX + "Hello from JS",
        "Second turn",
        CHAT_PREFIX + "Second turn",
        "Streamed turn",
    ]
