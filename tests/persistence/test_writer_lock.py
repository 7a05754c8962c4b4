"""One database, one writer: two real memory-store processes on one SQLite file or one PostgreSQL
schema. The second refuses to start; a clean stop or a kill -9 of the first lets the next one in;
a lock lost while running is reported by /readyz and taken back."""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from alice_py.db.writer_lock import advisory_key
from alice_py.fake import RunningFake
from tests.db.conftest import PG_DSN, postgres_schema
from tests.persistence.helpers import db_url, refused_start, running_alice

CHECK = {"ALICE_DATABASE_CHECK_INTERVAL": "0.2"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield db_url(tmp_path)
    else:
        async with postgres_schema() as url:
            yield url


async def test_a_second_instance_refuses_the_database_until_the_first_stops(
    tmp_path: Path, fake: RunningFake, database: str
) -> None:
    async with running_alice(tmp_path, fake, db=database) as first:
        conv = await first.create_turbo(stream=False)
        answer = await first.chat(conv, "mine")
        status, log = await refused_start(tmp_path, fake, db=database)
        assert status == 2, log
        refusal = [line for line in log.splitlines() if "holds the database" in line]
        assert len(refusal) == 1, log
        assert "another alice-py instance" in refusal[0]
        if database.startswith("sqlite"):
            assert f"pid {first.proc.pid}" in refusal[0]
        assert "Traceback" not in log
        assert await first.sentences(conv) == ["mine", answer]  # the first one serves on
        await first.stop()

    async with running_alice(tmp_path, fake, db=database) as second:  # at once after a clean stop
        assert await second.sentences(conv) == ["mine", answer]
        second.signal(signal.SIGKILL)
        assert await second.stopped() == -signal.SIGKILL

    async with running_alice(tmp_path, fake, db=database) as third:  # kill -9 blocks no one
        assert await third.sentences(conv) == ["mine", answer]
        await third.stop()


async def test_a_lost_sqlite_lock_is_reported_and_taken_back(tmp_path: Path, fake: RunningFake) -> None:
    lock_path = Path(str(db_url(tmp_path)).removeprefix("sqlite+aiosqlite:///") + ".lock")
    async with running_alice(tmp_path, fake, **CHECK) as alice:
        assert (await alice.readyz())[0] == 200
        os.unlink(lock_path)  # someone removed the lock file, and another process took the new one
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            await alice.wait_for_log(f"writer lock lost (the lock file {lock_path} was")
            await alice.until_ready(503, "now held by another process")
            conv = await alice.create_turbo(stream=False)  # still serving
            answer = await alice.chat(conv, "while lost")
        finally:
            os.close(fd)
        await alice.wait_for_log("writer lock taken back: saving conversations again")
        assert await alice.until_ready(200) == "ready"
        await alice.stop()
    async with running_alice(tmp_path, fake) as alice:
        assert await alice.sentences(conv) == ["while lost", answer]
        await alice.stop()


async def _lock_backend(admin: asyncpg.Connection, schema: str) -> int:
    key = advisory_key(schema)
    row = await admin.fetchrow(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = $1 AND objid = $2 AND objsubid = 1",
        (key >> 32) & 0xFFFFFFFF,
        key & 0xFFFFFFFF,
    )
    assert row is not None, "no backend holds the writer lock"
    return int(row["pid"])


@pytest.mark.postgres
async def test_a_killed_postgresql_lock_connection_is_reported_and_the_lock_taken_back(
    tmp_path: Path, fake: RunningFake
) -> None:
    async with postgres_schema() as url:
        schema = url.rsplit("search_path=", 1)[1]
        admin = await asyncpg.connect(PG_DSN)
        try:
            async with running_alice(tmp_path, fake, db=url, **CHECK) as alice:
                assert (await alice.readyz())[0] == 200
                holder = await _lock_backend(admin, schema)
                # With a timeout, pg_terminate_backend waits until the backend has exited (and so
                # released its locks): without one, the next line races the backend's exit.
                assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", holder)
                # Someone else takes it before the service can: it must not write meanwhile.
                assert await admin.fetchval("SELECT pg_try_advisory_lock($1)", advisory_key(schema))
                await alice.wait_for_log("writer lock lost (its connection failed")
                await alice.until_ready(503, "now held by another instance")
                conv = await alice.create_turbo(stream=False)  # still serving
                answer = await alice.chat(conv, "while lost")
                await admin.execute("SELECT pg_advisory_unlock_all()")
                await alice.wait_for_log("writer lock taken back: saving conversations again")
                assert await alice.until_ready(200) == "ready"
                assert await alice.sentences(conv) == ["while lost", answer]
                await alice.stop()
            async with running_alice(tmp_path, fake, db=url) as alice:
                assert await alice.sentences(conv) == ["while lost", answer]
                await alice.stop()
        finally:
            await admin.close()
