"""One database, one writer: the lock a memory-store instance holds on its database.

A memory-store instance is the only copy-keeper of its conversations: a second one on
the same database would overwrite the first's saved conversations (last writer wins,
finished ones come back). So it takes this lock before loading anything, and refuses
to start when another instance holds it.

- SQLite: an OS file lock (``flock``) on ``<database>.lock`` beside the file. Chosen over
  a lease row because the kernel drops it the moment the holder dies (kill -9 blocks
  nobody), there is no heartbeat to write or clock to trust, and a SQLite file is only
  shared by processes of one host anyway. ``flock`` (not ``fcntl`` record locks) because
  it belongs to the open file, so two instances in one process exclude each other too.
  The file is never deleted (that would let a late opener lock an orphan); it holds the
  holder's pid, for the refusal message.
- PostgreSQL: a session advisory lock held on a connection of its own (autocommit, so it
  never sits idle in a transaction). The key is derived from the schema in use, so
  instances on separate schemas of one database do not exclude each other. It dies
  with the holder's connection.

``check`` is called periodically (``db.health``): it notices a lost lock (the connection
killed, the lock file removed or replaced) and takes it back on a later call when it
is free again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alice_py.db.engine import describe_error, is_memory_sqlite, mask_url
from alice_py.errors import ConfigError

_CHECK_TIMEOUT = 5.0
_SHARE_HINT = "stop it first, or give each memory-store instance a database of its own"


class DatabaseInUse(ConfigError):
    """Another instance holds the writer lock: this one must not start."""


class WriterLock(Protocol):
    held: bool
    """Whether this process holds the lock now (saving is paused while it does not)."""

    async def acquire(self) -> None:
        """Take the lock, or raise ``DatabaseInUse`` naming who holds it."""
        ...

    async def check(self) -> str | None:
        """None while held; else why not (a lost lock is taken back by a later call when free)."""
        ...

    async def release(self) -> None: ...


def writer_lock(engine: AsyncEngine) -> WriterLock | None:
    """The lock for this database; None for an in-memory SQLite one (no one else can open it)."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(engine)
    if is_memory_sqlite(url) or url.database is None or url.query.get("uri") == "true":
        return None
    return FileLock(Path(url.database), mask_url(url))


class FileLock:
    def __init__(self, database: Path, described: str) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._described = described
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._lost: str | None = None
        self.held = False

    def _try(self) -> str | None:
        """Take the lock: None, or who holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            return f"pid {holder}" if holder.isdigit() else "another process"
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        info = os.fstat(fd)
        self._fd, self._identity, self.held = fd, (info.st_dev, info.st_ino), True
        return None

    async def acquire(self) -> None:
        try:
            holder = self._try()
        except OSError as exc:
            raise ConfigError(f"cannot open the database lock file {self.path}: {exc.strerror}") from None
        if holder is not None:
            raise DatabaseInUse(
                f"another alice-py instance ({holder}) holds the database {self._described} "
                f"(lock file {self.path}): {_SHARE_HINT}"
            )

    def _still_ours(self) -> str | None:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return f"the lock file {self.path} was deleted"
        if (info.st_dev, info.st_ino) != self._identity:
            return f"the lock file {self.path} was replaced"
        return None

    async def check(self) -> str | None:
        if self.held:
            lost = self._still_ours()
            if lost is None:
                return None
            self._close()
            self._lost = lost
            return lost  # taken back on a later call, once the state settled
        try:
            holder = self._try()
        except OSError as exc:
            return f"{self._lost or 'lost'}; cannot open {self.path}: {exc.strerror}"
        if holder is None:
            self._lost = None
            return None
        return f"{self._lost or 'lost'}; now held by {holder}"

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the flock
        self._fd, self._identity, self.held = None, None, False

    async def release(self) -> None:
        self._close()


def advisory_key(schema: str) -> int:
    """The advisory lock's 64-bit key for instances writing to ``schema``."""
    digest = hashlib.blake2b(f"alice-py writer {schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryLock:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._lost: str | None = None
        self.held = False

    async def _try(self) -> bool:
        connection = await self._engine.connect()
        try:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            schema = (await connection.execute(text("SELECT current_schema()"))).scalar_one()
            key = advisory_key(str(schema))
            got = (
                await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            ).scalar_one()
        except BaseException:
            await connection.close()
            raise
        if not got:
            await connection.close()
            return False
        self._connection, self.held = connection, True
        return True

    async def acquire(self) -> None:
        if not await self._try():
            raise DatabaseInUse(
                f"another alice-py instance holds the database {mask_url(self._engine.url)}: {_SHARE_HINT}"
            )

    async def check(self) -> str | None:
        if self.held and self._connection is not None:
            try:
                async with asyncio.timeout(_CHECK_TIMEOUT):
                    await self._connection.execute(text("SELECT 1"))
                return None
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                self._lost = f"its connection failed: {describe_error(exc, self._engine.url)}"
                await self._drop()
                return self._lost
        try:
            if await self._try():
                self._lost = None
                return None
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            return f"{self._lost or 'lost'}; database: {describe_error(exc, self._engine.url)}"
        return f"{self._lost or 'lost'}; now held by another instance"

    async def _drop(self) -> None:
        connection, self._connection, self.held = self._connection, None, False
        if connection is not None:
            with contextlib.suppress(SQLAlchemyError, OSError, TimeoutError):
                await connection.invalidate()
                await connection.close()

    async def release(self) -> None:
        connection = self._connection
        if connection is not None and self.held:
            with contextlib.suppress(SQLAlchemyError, OSError, TimeoutError):
                await connection.execute(text("SELECT pg_advisory_unlock_all()"))
        if connection is not None:
            with contextlib.suppress(SQLAlchemyError, OSError, TimeoutError):
                await connection.close()
        self._connection, self.held = None, False
