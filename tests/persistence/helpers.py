"""The real ``alice-py`` process, driven from a test's event loop.

The fake upstream runs in the test's loop (``start_fake_upstream``), so nothing here
may block: the process is started and awaited with asyncio, and its log goes to a
file (a full pipe would stall it).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from alice_py.db.conversations import ConversationRepository, SavedConversation
from alice_py.db.engine import create_engine
from alice_py.fake import RunningFake
from tests.support import clean_env, free_port

UPSTREAM_KEY = "sk-test-0000000000005678"
STARTUP_LIMIT = 30.0
STOP_LIMIT = 20.0


def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}"


@dataclass
class Alice:
    """One running ``alice-py serve`` process and an HTTP session to it."""

    url: str
    proc: asyncio.subprocess.Process
    log_path: Path
    session: aiohttp.ClientSession

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    async def post(self, route: str, body: str | bytes = b"", conv: str | None = None) -> tuple[int, str]:
        headers = {"conversation": conv} if conv else {}
        async with self.session.post(f"{self.url}/chatgpt/{route}", data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def create_turbo(self, *, stream: bool) -> str:
        status, conv_id = await self.post("createTurbo", json.dumps({"stream": stream}))
        assert status == 200, conv_id
        return conv_id

    async def chat(self, conv: str, question: str) -> str:
        status, answer = await self.post("chat", question.encode(), conv)
        assert status == 200, answer
        return answer

    async def sentences(self, conv: str) -> list[str] | None:
        """``contextArray``, or None if the conversation is unknown (a use: its ttl restarts)."""
        status, body = await self.post("contextArray", conv=conv)
        if status == 404:
            return None
        assert status == 200, body
        result: list[str] = json.loads(body)
        return result

    async def readyz(self) -> tuple[int, str]:
        async with self.session.get(f"{self.url}/readyz") as resp:
            return resp.status, await resp.text()

    async def until_ready(self, status: int, saying: str = "", limit: float = 10.0) -> str:
        """Until ``/readyz`` answers ``status`` with ``saying`` in its body; returns the body."""
        async with asyncio.timeout(limit):
            while (answer := await self.readyz())[0] != status or saying not in answer[1]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return answer[1]

    async def wait_for_log(self, text: str, limit: float = 10.0) -> None:
        async with asyncio.timeout(limit):
            while text not in self.log:  # noqa: ASYNC110 - a file: nothing to await on
                await asyncio.sleep(0.02)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    async def stopped(self, limit: float = STOP_LIMIT) -> int:
        """The exit status, once the process has ended."""
        async with asyncio.timeout(limit):
            return await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM, and check it ended well."""
        self.signal()
        assert await self.stopped() == 0, self.log


async def _wait_until_up(alice: Alice) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        if alice.proc.returncode is not None:
            raise AssertionError(f"alice-py exited with {alice.proc.returncode}:\n{alice.log}")
        try:
            async with alice.session.get(alice.url + "/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"alice-py did not answer within {STARTUP_LIMIT} s:\n{alice.log}")


async def _start(
    tmp_path: Path, fake: RunningFake, args: tuple[str, ...], env: dict[str, str], db: str | None
) -> tuple[int, Path, asyncio.subprocess.Process]:
    port = free_port()
    log_path = tmp_path / f"alice-{port}.log"
    command = [
        sys.executable, "-m", "alice_py", "serve", "--port", str(port), "--auth", "none", "--limit", "0",
        "--base-url", fake.url, "--db", db or db_url(tmp_path), *args,
    ]  # fmt: skip
    with log_path.open("w", encoding="utf-8") as log_file:
        proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=tmp_path,
            env=clean_env(OPENAI_API_KEY=UPSTREAM_KEY, **env),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log_file,
        )
    return port, log_path, proc


async def refused_start(
    tmp_path: Path, fake: RunningFake, *args: str, db: str | None = None, **env: str
) -> tuple[int, str]:
    """Start ``alice-py serve`` expecting it to stop by itself: its exit status and log."""
    _, log_path, proc = await _start(tmp_path, fake, args, env, db)
    try:
        async with asyncio.timeout(STARTUP_LIMIT):
            status = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return status, log_path.read_text(encoding="utf-8")


@asynccontextmanager
async def running_alice(
    tmp_path: Path, fake: RunningFake, *args: str, db: str | None = None, **env: str
) -> AsyncIterator[Alice]:
    """``alice-py serve`` on a free port against ``fake``, with its SQLite file in ``tmp_path``
    (or the database ``db``).

    ``env`` adds ``ALICE_*`` variables. Killed at the end if the test left it running.
    """
    port, log_path, proc = await _start(tmp_path, fake, args, env, db)
    async with aiohttp.ClientSession() as session:
        alice = Alice(f"http://127.0.0.1:{port}", proc, log_path, session)
        try:
            await _wait_until_up(alice)
            yield alice
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def saved_rows(tmp_path: Path) -> dict[str, SavedConversation]:
    """What the database file holds now, by id (expired rows too)."""
    engine = create_engine(db_url(tmp_path))
    try:
        rows = await ConversationRepository(engine).load_live(0.0)
    finally:
        await engine.dispose()
    return {row.id: row for row in rows}


async def rewrite_rows(tmp_path: Path, rows: list[SavedConversation]) -> None:
    engine = create_engine(db_url(tmp_path))
    try:
        await ConversationRepository(engine).save_many(rows)
    finally:
        await engine.dispose()
