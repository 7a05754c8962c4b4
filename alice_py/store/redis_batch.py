"""The Redis store's scripts, sent together: the commands of concurrent requests share one write.

Every command that requests issue in the same turn of the event loop goes out in one write
on one pooled connection, and their replies are read back in order (auto-pipelining, as
ioredis's ``enableAutoPipelining``). Through ``Redis.execute_command`` each command pays for
its own pool checkout, write, timeout context and wake-up; sent together they share them
(``docs/performance.md``, "Redis store"). Each command is still its own Lua script, atomic on
its own: a batch is not a transaction, and one command's error is that command's alone.

Connection errors are retried as the client's own ``Retry`` says (a pooled connection that
died with a Redis restart is replaced), for the commands whose reply had not come yet, as
redis-py retries a single command. A batch runs in a task of its own, so a request that is
cancelled while waiting never leaves a connection with unread replies behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Arg = bytes | str | int | float
Pending = tuple[tuple[Arg, ...], "asyncio.Future[Any]"]


class Batcher:
    """``await batcher.script(script, keys, args)``: ``script``'s reply, sent with its neighbours'."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._pool: Any = client.connection_pool  # its connection API is untyped
        self._queue: list[Pending] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def script(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self._call(command)
        except NoScriptError:  # Redis restarted or flushed its scripts: load it, then once more
            await self._redis.script_load(script.script)
            return await self._call(command)

    def _call(self, command: tuple[Arg, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((command, future))
        if len(self._queue) == 1:
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.create_task(self._send(batch), name="redis batch")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[Pending]) -> None:
        conn: Any = None
        try:
            conn = await self._pool.get_connection()
            await conn.retry.call_with_retry(lambda: _exchange(conn, batch), lambda error: conn.disconnect())
        except BaseException as exc:
            if conn is not None:
                await conn.disconnect()  # replies may be left unread on it
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            if conn is not None:
                await self._pool.release(conn)

    async def close(self) -> None:
        """Wait for the batches under way (at shutdown, before the client is closed)."""
        while self._tasks or self._queue:
            if self._queue:
                self._flush()
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def _exchange(conn: Any, batch: list[Pending]) -> None:
    waiting = [(command, future) for command, future in batch if not future.done()]
    if not waiting:
        return
    await conn.send_packed_command(conn.pack_commands([command for command, _ in waiting]))
    for _, future in waiting:
        try:
            reply = await conn.read_response()
        except ResponseError as exc:  # this command's error: the connection is fine
            if not future.done():
                future.set_exception(exc)
            continue
        if not future.done():
            future.set_result(reply)


def _fail(batch: list[Pending], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc if isinstance(exc, Exception) else RedisConnectionError("cancelled"))
