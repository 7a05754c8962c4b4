"""``Idempotency-Key`` on ``POST /v1/responses`` (``docs/responses.md``): retry-safe creates.

A client whose connection broke cannot tell whether its response was made; it sends the
request again with the same key. A key belongs to the client key that sent it:

- answered already (``db.response_keys``, written with the response): the same response
  again, the model not asked (a stream: ``response.created`` then ``response.completed``
  with the whole response); a background response as it is now;
- still being made: 409 (the key's lock, the live store's, so on a shared store it holds
  across instances, and lapses by itself when its instance dies);
- sent with another body: 422.

The openai SDKs send no key of their own (``_idempotency_header`` is unset): a client passes
one with ``extra_headers={"Idempotency-Key": …}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from alice_py import appkeys
from alice_py.api.dialects import json_response
from alice_py.api.openai_errors import IdempotencyKeyInUse, IdempotencyKeyReused, OpenAIBadRequest
from alice_py.api.responses_state import RESPONSE_KEYS, RESPONSES, owner
from alice_py.db.response_keys import KeptKey
from alice_py.engine.idempotency import BAD_KEY, MAX_KEY_LENGTH
from alice_py.responses.hold import Hold

HEADER = "Idempotency-Key"
LOCK_PREFIX = "response-key:"
_LAST_EVENT = {
    "completed": "response.completed",
    "failed": "response.failed",
    "incomplete": "response.incomplete",
}
"""The event that carries a replayed response, by its status (a background one may still run)."""
Release = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Claim:
    """The key is this request's until ``release``: the turn writes it with its response."""

    key: str
    fingerprint: str
    release: Release


def fingerprint(body: dict[str, Any]) -> str:
    """The body's digest, ``stream`` aside: the same response may be asked again either way."""
    rest = {name: value for name, value in body.items() if name != "stream"}
    return hashlib.sha256(orjson.dumps(rest, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _key(request: web.Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise OpenAIBadRequest(BAD_KEY, param=HEADER)
    return key


async def _kept(request: web.Request, key: str, print_: str) -> KeptKey | None:
    kept = await request.app[RESPONSE_KEYS].get(owner(request), key)
    if kept is not None and kept.fingerprint != print_:
        raise IdempotencyKeyReused(
            f"{HEADER} '{key}' was already used with a different request: "
            "send a new key for a new request."
        )
    return kept


async def claim(request: web.Request, body: dict[str, Any]) -> Claim | KeptKey | None:
    """None without a key; the kept answer of a repeat; else this request's claim on the key."""
    key = _key(request)
    if key is None:
        return None
    print_ = fingerprint(body)
    kept = await _kept(request, key, print_)
    if kept is not None:
        return kept
    service = request.app[appkeys.SERVICE]
    named = f"{owner(request)}\0{key}".encode("utf-8", "surrogatepass")
    lock = LOCK_PREFIX + hashlib.sha256(named).hexdigest()
    hold = await Hold.take(service.store, lock, service.renew_every)
    if hold is None:
        raise IdempotencyKeyInUse(
            f"A request with {HEADER} '{key}' is still in progress: retry when it has finished."
        )
    try:  # answered between the first look and the lock
        kept = await _kept(request, key, print_)
    except BaseException:
        await hold.release()
        raise
    if kept is not None:
        await hold.release()
        return kept
    return Claim(key, print_, hold.release)


async def replay(request: web.Request, kept: KeptKey, stream: bool) -> web.StreamResponse:
    """The response the key was answered, made no more; a background one as it is now."""
    body = kept.body
    if body.get("background"):
        stored = await request.app[RESPONSES].get(owner(request), str(body["id"]))
        body = body if stored is None else stored.body
    if not stream:
        return json_response(body)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    created = {**body, "status": "in_progress", "output": []}
    last = _LAST_EVENT.get(str(body.get("status")), "response.in_progress")
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": created, "sequence_number": 0},
        {"type": last, "response": body, "sequence_number": 1},
    ]
    for event in events:
        head = b"event: " + str(event["type"]).encode() + b"\ndata: "
        await response.write(head + orjson.dumps(event) + b"\n\n")
    await response.write_eof()
    return response
