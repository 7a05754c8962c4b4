"""Noticing that the database went away, while the service runs.

Every ``[database] check_interval`` seconds (10 by default; readiness reads the last
result, so ``/readyz`` stays cheap):

- a write probe: one row of ``health_probe`` is upserted, so a database that answers
  reads but refuses writes (read-only, disk full, a standby) reads as not ready;
- for a SQLite file, whether the path still names the file opened at start (device and
  inode compared with the open descriptor): a file deleted or replaced under the service
  would otherwise take every later write with it, unseen until the next start;
- the writer lock (``db.writer_lock``), when this instance holds one: lost, it is
  taken back as soon as it is free.

Each problem is logged once when it appears (ERROR) and once when it clears.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from alice_py.db._common import insert_for
from alice_py.db.engine import describe_error, is_memory_sqlite
from alice_py.db.models import HealthProbeRow
from alice_py.db.writer_lock import WriterLock

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0
PROBE_ROW = "write-probe"


class SqliteFile:
    """The database file as opened at start, to notice it being deleted or replaced."""

    def __init__(self, path: Path) -> None:
        self.path = path.absolute()
        self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)

    def problem(self) -> str | None:
        opened = os.fstat(self._fd)
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return f"the database file {self.path} was deleted under the running service"
        if (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
            return f"the database file {self.path} was replaced under the running service"
        return None

    def close(self) -> None:
        os.close(self._fd)


class DatabaseHealth:
    """The latest verdict of the periodic checks (see the module's doc)."""

    def __init__(
        self, engine: AsyncEngine, *, lock: WriterLock | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine
        self._lock = lock
        self._clock = clock
        url = engine.url
        sqlite_file = url.get_backend_name() == "sqlite" and not is_memory_sqlite(url) and url.database
        self._file = SqliteFile(Path(url.database)) if sqlite_file and url.database else None
        self._problems: dict[str, str] = {}

    @property
    def problem(self) -> str | None:
        """None when every check passed last time, else the reasons."""
        return "; ".join(self._problems.values()) or None

    async def check(self) -> None:
        """One round of every check."""
        self._record(
            "file", None if self._file is None else self._file.problem(), "the database file is back"
        )
        self._record("write", await self._probe(), "the database takes writes again")
        if self._lock is not None:
            lost = await self._lock.check()
            self._record(
                "lock",
                None
                if lost is None
                else f"writer lock lost ({lost}): conversations are not saved until it is back",
                "writer lock taken back: saving conversations again",
            )

    def _record(self, name: str, problem: str | None, cleared: str) -> None:
        before = self._problems.get(name)
        if problem is None:
            if before is not None:
                del self._problems[name]
                log.info("%s", cleared)
            return
        if problem != before:
            log.error("%s; /readyz answers 503", problem)
        self._problems[name] = problem

    async def _probe(self) -> str | None:
        stmt = insert_for(self._engine.dialect, HealthProbeRow).values(
            name=PROBE_ROW, written_at=self._clock()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"], set_={"written_at": stmt.excluded.written_at}
        )
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                async with self._engine.begin() as connection:
                    await connection.execute(stmt)
        except TimeoutError:
            return f"the database cannot be written: no answer within {PROBE_TIMEOUT:g} s"
        except (SQLAlchemyError, OSError) as exc:
            return f"the database cannot be written: {describe_error(exc, self._engine.url)}"
        return None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


async def watch(health: DatabaseHealth, interval: float) -> None:
    """Check every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            await health.check()
        except Exception:
            log.exception("database health check failed")
