"""``truncation`` of the Responses API: the chat request cut to the model's window, or refused.

The engine's context policy decides (``ContextPolicy.fit``, one call on the response's
message list, with its windows and tokenizer), but the request picks the policy, as at
OpenAI: ``disabled`` (the default) is ``error`` (a 400 ``context_length_exceeded``, before any
upstream call), ``auto`` is ``drop_oldest`` (the leading system messages and the newest whole
turns that fit; a turn starts at a user message, so a tool call stays with its output).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from alice_py.api.openai_errors import OpenAIBadRequest
from alice_py.engine.context import ContextPolicy, ContextTooLong
from alice_py.engine.requests import Turn
from alice_py.upstream.types import UpstreamRequest

POLICIES = {"disabled": "error", "auto": "drop_oldest"}
NAMES = ("user", "assistant")
"""What ``fit`` needs for a transcript's speakers: unused for chat requests."""


def _text(message: dict[str, Any]) -> str:
    """What of a message the tokenizer counts: its text, and a tool call's name and arguments."""
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    calls = message.get("tool_calls")
    if calls:
        text += orjson.dumps(calls).decode()
    return text


async def fit(policy: ContextPolicy, truncation: str, request: UpstreamRequest) -> UpstreamRequest:
    """``request`` as it will be sent: whole, or (``auto``) without its oldest turns."""
    body = request.body
    messages: list[dict[str, Any]] = body["messages"]
    lead = 0
    while lead < len(messages) - 1 and messages[lead].get("role") == "system":
        lead += 1
    head, rest = messages[:lead], messages[lead:]
    turns: list[Turn] = [("user" if m.get("role") == "user" else "assistant", _text(m)) for m in rest]

    def build(kept: Sequence[Turn]) -> UpstreamRequest:
        sent = [*head, *rest[len(rest) - len(kept) :]]
        return UpstreamRequest(endpoint=request.endpoint, body={**body, "messages": sent})

    chosen = policy.with_policy(POLICIES[truncation])
    prompt = "\n".join(_text(m) for m in head)
    try:
        fitted = chosen.fit(turns, build, prompt=prompt, names=NAMES)
        # Over the configured or default window: the upstream's own figure first (once per
        # process, as the engine does), then decide again.
        if fitted.dropped and await chosen.learn(str(body.get("model", ""))):
            fitted = chosen.fit(turns, build, prompt=prompt, names=NAMES)
        return fitted.request
    except ContextTooLong as error:
        if await chosen.learn(str(body.get("model", ""))):
            return await fit(policy, truncation, request)
        hint = "" if truncation == "auto" else "; send truncation='auto' to leave out the oldest turns"
        raise OpenAIBadRequest(
            f"Your input exceeds the context window of this model: {error.message}{hint}.",
            param="input",
            code="context_length_exceeded",
        ) from None
