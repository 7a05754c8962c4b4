"""One response being made, whole, streamed or in the background.

What it writes, it writes in one transaction once the response completed: the stored
response (with ``store``), its input and output appended to its conversation (with
``conversation``); a background response's row goes from ``queued`` to its final state.
A failed or cancelled response writes none of its items.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from alice_py import appkeys
from alice_py.api.responses_state import RESPONSE_KEYS, RESPONSES, RUNS
from alice_py.db import response_runs
from alice_py.db.openai_conversations import append_items, conversation_exists
from alice_py.db.response_keys import KeptKey
from alice_py.db.responses import ResponseRepository, StoredResponse
from alice_py.errors import AliceError
from alice_py.responses.output import StreamedOutput, finished
from alice_py.responses.request import ResponseRequest
from alice_py.upstream.errors import UpstreamError, UpstreamRateLimitError
from alice_py.upstream.types import UpstreamRequest
from alice_py.web.errors import client_message
from alice_py.web.sse import Ending, write_stream

log = logging.getLogger(__name__)

Batch = list[bytes]


async def _nothing() -> None:
    return None


class Turn:
    def __init__(
        self,
        app: web.Application,
        owner: str,
        parsed: ResponseRequest,
        history: list[dict[str, Any]],
        response: dict[str, Any],
        conversation: str | None = None,
    ) -> None:
        self.app = app
        self.owner = owner
        self.parsed = parsed
        self.history = history
        self.response = response
        self.conversation = conversation
        self.sequence = 0
        self.key: tuple[str, str] | None = None
        """``(Idempotency-Key, fingerprint)``: kept with the response (``api.response_keys``)."""
        self.release: Callable[[], Awaitable[None]] = _nothing
        """Lets go of the conversation (idempotent): right after the turn is written, so
        that a client who saw it finished may start the next one at once."""

    @property
    def id(self) -> str:
        return str(self.response["id"])

    @property
    def repository(self) -> ResponseRepository:
        return self.app[RESPONSES]

    async def save(self, done: dict[str, Any]) -> None:
        async with self.repository.engine.begin() as connection:
            if self.conversation is not None and await conversation_exists(connection, self.conversation):
                items = [*self.parsed.input_items, *done.get("output", [])]
                await append_items(connection, self.conversation, items)
            if self.response["background"]:
                await self.repository.set_body(connection, self.id, done)
                await response_runs.unregister(connection, self.id)
            elif self.parsed.store:
                stored = StoredResponse(body=done, input_items=self.parsed.input_items, history=self.history)
                await self.repository.save(self.owner, stored, connection)
            if self.key is not None and not self.response["background"]:  # a background one: at start
                await self.keep_key(connection, done)
        await self.release()

    async def keep_key(self, connection: AsyncConnection, body: dict[str, Any]) -> None:
        if self.key is not None:
            key, fingerprint = self.key
            await self.app[RESPONSE_KEYS].save(connection, self.owner, key, KeptKey(fingerprint, body))

    def event(self, event: dict[str, Any]) -> bytes:
        event["sequence_number"] = self.sequence
        self.sequence += 1
        return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"

    def failed_body(self, error: AliceError) -> dict[str, Any]:
        code = "rate_limit_exceeded" if isinstance(error, UpstreamRateLimitError) else "server_error"
        return {
            **self.response,
            "status": "failed",
            "error": {"code": code, "message": client_message(error)},
        }

    def failed(self, error: AliceError) -> bytes:
        """``response.failed``: the error inside the response (a top-level ``error`` makes
        the SDKs raise instead of yielding the event). Nothing of the turn is stored."""
        return self.event({"type": "response.failed", "response": self.failed_body(error)})

    def head(self) -> Batch:
        return [
            self.event({"type": "response.created", "response": self.response}),
            self.event(
                {"type": "response.in_progress", "response": {**self.response, "status": "in_progress"}}
            ),
        ]

    async def events(
        self, chunks: AsyncGenerator[list[dict[str, Any]], None], head: Batch
    ) -> AsyncGenerator[Batch, None]:
        """The stream events, batch by batch; ``head`` goes out with the first chunk."""
        output = StreamedOutput()
        batch = await anext(chunks, None) or []  # before any byte: a failure here is a plain HTTP error
        while True:
            events = [event for chunk in batch for event in output.chunk(chunk)]
            yield [*head, *(self.event(event) for event in events)]
            head = []
            next_batch = await anext(chunks, None)
            if next_batch is None:
                break
            batch = next_batch
        closing = [self.event(event) for event in output.finish()]
        done = finished(self.response, output.output, output.usage)
        await self.save(done)
        yield [*closing, self.event({"type": "response.completed", "response": done})]

    async def stream(self, request: web.Request, upstream: UpstreamRequest) -> web.StreamResponse:
        chunks = self.app[appkeys.ROUTER].stream(upstream)
        events = self.events(chunks, self.head())

        async def next_chunk() -> bytes | None:
            batch = await anext(events, None)
            return None if batch is None else b"".join(batch)

        async def close() -> None:
            await events.aclose()
            await chunks.aclose()

        return await write_stream(request, next_chunk, close, Ending(lambda: b"", self.failed))

    async def background(self, upstream: UpstreamRequest) -> None:
        """The background run: every event into the log; the final state into the database
        (``completed``, ``failed``, or ``cancelled`` by a client, ``failed`` by a shutdown).
        Nothing escapes it: what cannot be recorded is logged, and the run's row, no longer
        renewed, is marked failed by the heartbeat's sweep."""
        runs = self.app[RUNS]
        try:
            await self._run(upstream)
        except AliceError as error:
            if not isinstance(error, UpstreamError):  # the router logged those already
                self.app[appkeys.FAILURE_LOG].service_error(error)
            with contextlib.suppress(AliceError):  # the log itself may be what failed
                await runs.events.append(self.id, [self.failed(error)])
            await self._end(self.failed_body(error))
        except asyncio.CancelledError:
            stopped = {"status": "failed", "error": _STOPPED} if runs.closing else {"status": "cancelled"}
            await self._end({**self.response, **stopped})
            raise
        except Exception:  # a bug, or the database: logged, and the response says it failed
            log.exception("background response %s failed", self.id)
            await self._end({**self.response, "status": "failed", "error": _BROKEN})
        finally:
            await self.release()
            try:
                await runs.events.finish(self.id)
            except AliceError:
                log.warning("could not end the event log of background response %s", self.id)

    async def _run(self, upstream: UpstreamRequest) -> None:
        async with self.repository.engine.begin() as connection:
            await self.repository.set_body(connection, self.id, {**self.response, "status": "in_progress"})
        chunks = self.app[appkeys.ROUTER].stream(upstream)
        try:
            async for batch in self.events(chunks, []):
                await self.app[RUNS].events.append(self.id, batch)
        finally:
            await chunks.aclose()

    async def _end(self, body: dict[str, Any]) -> None:
        try:
            async with self.repository.engine.begin() as connection:
                await self.repository.set_body(connection, self.id, body)
                await response_runs.unregister(connection, self.id)
        except Exception:  # the database is down: the heartbeat's sweep fails it later
            log.exception("could not record the end of background response %s", self.id)
        await self.release()


_BROKEN = {"code": "server_error", "message": "This background response failed inside the service."}
_STOPPED = {
    "code": "server_error",
    "message": "The service stopped before this background response was finished.",
}
