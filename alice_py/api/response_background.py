"""Background responses over HTTP: started, streamed again from any event, cancelled.

``background: true`` stores the response as ``queued`` and hands it to a run owned by the
app (``responses.background``), which makes it with no client; the call answers at once
(with ``stream: true``, it follows the run's events, and closing that stream does not stop
the run). ``GET /v1/responses/{id}?stream=true&starting_after=N`` replays the events after
``N`` from the event log and follows the live ones. ``POST /v1/responses/{id}/cancel``
stops the run; the response is then ``cancelled``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from alice_py.api.dialects import json_response
from alice_py.api.openai_errors import OpenAIBadRequest
from alice_py.api.response_turn import Turn
from alice_py.api.responses_state import RESPONSES, RUNS, owner
from alice_py.db import response_runs
from alice_py.db.responses import StoredResponse
from alice_py.upstream.types import UpstreamRequest
from alice_py.web.sse import Ending, write_stream

Reply = Callable[[], Awaitable[web.StreamResponse]]
ACTIVE = ("queued", "in_progress")
CANCEL_WAIT = 5.0
"""Seconds a cancel waits for another instance's run to record that it stopped."""


async def start(request: web.Request, turn: Turn, upstream: UpstreamRequest) -> Reply:
    """Store the response ``queued`` and start its run, which holds the turn's conversation
    from now on; what the client is answered (the queued response, or its events as they come)."""
    turn.response.update(background=True, status="queued")
    runs = request.app[RUNS]
    repository = request.app[RESPONSES]
    stored = StoredResponse(body=turn.response, input_items=turn.parsed.input_items, history=turn.history)
    # The log first: it exists before anyone follows it, and a log that fails leaves no row.
    await runs.events.append(turn.id, turn.head())
    async with repository.engine.begin() as connection:
        await repository.save(turn.owner, stored, connection)
        await response_runs.register(connection, turn.id, runs.instance, runs.now())
        await turn.keep_key(connection, turn.response)  # a repeat follows this response
    queued = dict(turn.response)
    runs.start(turn.id, turn.background(upstream))
    if turn.parsed.stream:
        return lambda: _follow(request, turn.id, -1)

    async def answer() -> web.StreamResponse:
        return json_response(queued)

    return answer


def _starting_after(request: web.Request) -> int:
    raw = request.query.get("starting_after", "-1")
    try:
        value = int(raw)
    except ValueError:
        value = -2
    if value < -1:
        raise OpenAIBadRequest(
            "'starting_after' must be an event's sequence_number (0 or more).", param="starting_after"
        )
    return value


async def resume(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    if not body.get("background"):
        raise OpenAIBadRequest(
            "Only a background response can be streamed again: this one was answered to its request.",
            param="stream",
        )
    after = _starting_after(request)
    if not await request.app[RUNS].events.exists(body["id"]):
        raise OpenAIBadRequest(
            "The events of this response are no longer kept (they are kept for an hour after it "
            "finished): retrieve it without 'stream'.",
            param="stream",
        )
    return await _follow(request, body["id"], after)


async def _follow(request: web.Request, response_id: str, after: int) -> web.StreamResponse:
    """The run's events after ``after``, then the live ones until it ends. The client leaving
    ends only this stream, never the run."""
    batches = request.app[RUNS].events.follow(response_id, after)

    async def next_chunk() -> bytes | None:
        batch = await anext(batches, None)
        return None if batch is None else b"".join(batch)

    async def close() -> None:
        await batches.aclose()

    return await write_stream(request, next_chunk, close, Ending(lambda: b"", lambda _: b""))


async def cancel(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """The response once its run has stopped (a finished one as it is: cancelling is idempotent)."""
    if not body.get("background"):
        raise OpenAIBadRequest("Only a background response can be cancelled.", param="response_id")
    runs = request.app[RUNS]
    if await runs.cancel(body["id"]):
        return await _now(request, body)
    if body.get("status") in ACTIVE and await runs.cancel_elsewhere(body["id"]):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT):
                # Another instance writes the database: nothing here to await on.
                while (body := await _now(request, body)).get("status") in ACTIVE:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    return body


async def _now(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    stored = await request.app[RESPONSES].get(owner(request), body["id"])
    return body if stored is None else stored.body
