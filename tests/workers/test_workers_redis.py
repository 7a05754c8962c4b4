"""``alice-py serve --workers 2`` on the Redis store, as a user runs it: both workers serve one
port and one conversation, a killed worker is replaced, SIGTERM drains, a killed supervisor
takes its workers with it, and a worker that cannot start stops the service at once.

Which process answered is what a user sees in ``X-Request-Id``: its prefix is per process
(``alice_py.request_ids``). The workers themselves are the supervisor's children in /proc
(what ``ps --ppid`` lists)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp

from alice_py.fake import CHAT_PREFIX, RunningFake
from tests.persistence.helpers import Alice, refused_start, running_alice
from tests.support import wait_until

WORKERS = ("--workers", "2")
STARTUP = 30.0
"""Seconds a worker may take to start (the machine is shared: no speed asserted)."""


def redis_env(url: str, prefix: str) -> dict[str, str]:
    return {
        "ALICE_CONVERSATIONS_STORE": "redis",
        "ALICE_CONVERSATIONS_REDIS_URL": url,
        "ALICE_CONVERSATIONS_KEY_PREFIX": prefix,
    }


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (``ps --ppid``), from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@asynccontextmanager
async def supervised(tmp_path: Path, fake: RunningFake, env: dict[str, str]) -> AsyncIterator[Alice]:
    """``alice-py serve --workers 2`` with both workers up."""
    async with running_alice(tmp_path, fake, *WORKERS, **env) as alice:
        await wait_until(lambda: len(serving(alice)) == 2, STARTUP)
        assert set(serving(alice).values()) == children(alice.proc.pid)
        yield alice


SERVING = re.compile(r"worker pid (\d+) serving; its request ids start with (\w+)-")


def serving(alice: Alice) -> dict[str, int]:
    """The workers that said they serve, by request-id prefix: their pids."""
    return {prefix: int(pid) for pid, prefix in SERVING.findall(alice.log)}


async def answered_by(
    alice: Alice, route: str, body: bytes = b"", conv: str | None = None
) -> tuple[str, str]:
    """One request on a connection of its own (so the kernel picks a worker for it):
    the answer and the prefix of its request id, which names the process that answered."""
    headers = {"conversation": conv} if conv else {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        return await _post(session, f"{alice.url}/chatgpt/{route}", body, headers)


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[str, str]:
    async with session.post(url, data=body, headers=headers or {}) as resp:
        text = await resp.text()
        assert resp.status == 200, text
        return text, resp.headers["X-Request-Id"].rsplit("-", 1)[0]


def pinned_session() -> aiohttp.ClientSession:
    """A session of one kept-alive connection: every request goes to the worker that accepted it."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))


@asynccontextmanager
async def one_connection_per_worker(alice: Alice) -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
    """A kept-alive connection to each worker, by request-id prefix. A worker left idle accepts
    every connection of a quiet moment, so they are opened in bursts until both have taken one."""
    async with AsyncExitStack() as stack:
        pinned: dict[str, aiohttp.ClientSession] = {}
        for _ in range(20):
            burst = [
                await stack.enter_async_context(pinned_session())
                for _ in range(16)
            ]
            answers = await asyncio.gather(*(_post(s, f"{alice.url}/chatgpt/createGPT4") for s in burst))
            for session, (_, prefix) in zip(burst, answers, strict=True):
                pinned.setdefault(prefix, session)
            if len(pinned) == 2:
                break
        assert len(pinned) == 2, pinned
        yield pinned


async def test_both_workers_serve_and_a_conversation_continues_whichever_answers(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    async with supervised(tmp_path, fake, redis_env(*redis_prefix)) as alice:
        async with one_connection_per_worker(alice) as pinned:
            assert {serving(alice)[prefix] for prefix in pinned} == children(alice.proc.pid)
            conv = await alice.create_turbo(stream=False)
            sessions = list(pinned.items())
            for n in range(6):  # turn by turn, on one worker then the other
                prefix, session = sessions[n % 2]
                answer, answered = await _post(session, f"{alice.url}/chatgpt/chat", f"q{n}".encode(),
                                               {"conversation": conv})  # fmt: skip
                assert (answer, answered) == (CHAT_PREFIX + f"q{n}", prefix)
            _, session = sessions[1]
            context = f"{alice.url}/chatgpt/contextArray"
            sentences, _ = await _post(session, context, headers={"conversation": conv})
            assert json.loads(sentences) == [s for n in range(6) for s in (f"q{n}", CHAT_PREFIX + f"q{n}")]
        await alice.stop()
    assert not children(alice.proc.pid)


async def test_a_worker_killed_is_replaced_and_the_service_keeps_answering(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    async with supervised(tmp_path, fake, redis_env(*redis_prefix)) as alice:
        async with one_connection_per_worker(alice) as pinned:
            first_prefixes = set(pinned)
        conv = await alice.create_turbo(stream=False)
        before = children(alice.proc.pid)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        for n in range(10):  # meanwhile the other worker answers every request
            answer, _ = await answered_by(alice, "chat", f"q{n}".encode(), conv)
            assert answer == CHAT_PREFIX + f"q{n}"
        await alice.wait_for_log(f"(pid {victim}) ended with signal SIGKILL")
        await wait_until(lambda: len(children(alice.proc.pid)) == 2, STARTUP)
        after = children(alice.proc.pid)
        assert victim not in after and len(after - before) == 1
        (replacement,) = after - before
        await wait_until(lambda: replacement in serving(alice).values(), STARTUP)
        async with one_connection_per_worker(alice) as pinned:
            assert len(set(pinned) - first_prefixes) == 1  # the replacement serves too
            assert {serving(alice)[prefix] for prefix in pinned} == after
            for session in pinned.values():
                sentences, _ = await _post(session, f"{alice.url}/chatgpt/contextArray",
                                           headers={"conversation": conv})  # fmt: skip
                assert len(json.loads(sentences)) == 20
        await alice.stop()


async def test_sigterm_during_a_streamed_answer_lets_it_finish_and_everything_exits_0(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    async with supervised(tmp_path, fake, redis_env(*redis_prefix)) as alice:
        workers = children(alice.proc.pid)
        conv = await alice.create_turbo(stream=True)
        fake.state.chunk_delay = 0.15
        async with alice.session.post(
            f"{alice.url}/chatgpt/chat", data=b"one two three four five", headers={"conversation": conv}
        ) as resp:
            assert resp.status == 200
            first = await resp.content.readany()  # the answer is streaming
            alice.signal(signal.SIGTERM)
            rest = await resp.content.read()
        events = (first + rest).decode()
        assert events.rstrip().endswith("data: [DONE]")
        words = [line[len("data: ") :] for line in events.splitlines() if line.startswith("data: ")]
        assert "".join(words[:-1]) == CHAT_PREFIX + "one two three four five"
        assert await alice.stopped() == 0, alice.log
    assert not any(alive(pid) for pid in workers)
    assert "ended with" not in alice.log  # no worker died on the way


async def test_a_supervisor_killed_outright_takes_its_workers_with_it(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    async with supervised(tmp_path, fake, redis_env(*redis_prefix)) as alice:
        workers = children(alice.proc.pid)
        conv = await alice.create_turbo(stream=False)
        alice.signal(signal.SIGKILL)
        assert await alice.stopped() == -signal.SIGKILL
        await wait_until(lambda: not any(alive(pid) for pid in workers), STARTUP)
        await alice.wait_for_log("the supervisor is gone")
        # Each stopped gracefully: each saved what was left to save (the one conversation, once).
        await wait_until(lambda: alice.log.count("changed since the last round") == 2, STARTUP)
        assert "saved 1 conversation(s) changed since the last round" in alice.log
        try:
            await alice.sentences(conv)
        except aiohttp.ClientConnectionError:
            pass  # nobody listens on the port any more
        else:
            raise AssertionError("the port is still served")


async def test_a_worker_that_cannot_start_stops_the_service_at_once_with_status_2(
    tmp_path: Path, fake: RunningFake, redis_prefix: tuple[str, str]
) -> None:
    started = time.monotonic()
    status, log = await refused_start(
        tmp_path, fake, *WORKERS, db="postgresql://postgres@127.0.0.1:1/nothing", **redis_env(*redis_prefix)
    )
    assert status == 2, log
    assert time.monotonic() - started < 15
    assert "cannot open the database 'postgresql+asyncpg://postgres@127.0.0.1:1/nothing'" in log
    assert "could not start (see above), another would fail the same way" in log
    assert "in its place" not in log  # not respawned
    assert "Traceback" not in log
