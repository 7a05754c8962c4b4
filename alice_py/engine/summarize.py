"""``[context] policy = "summarize"``: the oldest turns sent as a summary a model made of them.

A turn whose history does not fit the window (``engine.context`` left turns out) is refitted
here, once it is admitted and before its own model call:

- the newest summary on the question's path is reused when it and the turns after it fit:
  no model call, so a summary is made once and serves every later turn (and every branch
  below the message it ends at);
- otherwise a new one is made, of the previous summary and the turns after it, up to the
  newest turns that fit in half the budget less the room for the summary (so that several
  turns go by before the next one is needed), or as many of the oldest as one call can read
  within the window; the summary's room is an eighth of the budget (32 to 1,024 tokens).
  The call is the Alice ``summary`` preset (``<text>\\nTl;dr\\n`` for completion kinds;
  for chat kinds the text as the system message and ``Tl;dr`` as the question) with the
  conversation's own model, through the same upstream router (keys, failover), its
  ``max_tokens`` the room kept for the summary;
  its tokens count in the usage of the turn that keeps it (the conversation's, its key's and
  its client's: the call keeps the conversation's key, as the turn's own does);
- if the call fails or answers nothing, the turn goes on as ``drop_oldest`` (with the
  previous summary, if there is one), and one line says so in the failure log.

What is sent: the system prompt, then the summary (chat: a second system message; a
transcript: a line after its opening text), then the turns it does not stand for. The
summary is kept with the turn (``TurnContext.record``) as a ``tree.Summary`` anchored at the
last message it stands for; a turn that fails keeps nothing, its summary included.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from alice_py.engine.context import ContextPolicy, ContextTooLong, TurnContext
from alice_py.engine.presets import SUMMARY
from alice_py.engine.requests import Turn
from alice_py.engine.tree import Conversation, Summary
from alice_py.errors import AliceError
from alice_py.failure_log import Failure, FailureLog
from alice_py.ids import new_message_id
from alice_py.request_ids import current
from alice_py.upstream.client import response_text
from alice_py.upstream.types import Upstream, UpstreamRequest

HEAD = "Summary of the conversation so far: "
"""What the summary sent starts with, so that the model reads it as such."""
INSTRUCTION = (
    "Summarize this conversation in at most {words} words, keeping names, facts, decisions "
    "and open questions:\n\n"
)
QUESTION = "Tl;dr"
MIN_ROOM = 32
"""Fewest tokens asked for a summary, however small the window."""
MAX_ROOM = 1024
"""Most tokens asked for a summary, however large the window (an eighth of it below 8k)."""
CALL_OVERHEAD = 64
"""Our allowance for the summary call's own text (the instruction, ``Tl;dr``, the format)."""
FELL_BACK = "the summary call failed: the oldest turns were left out instead (drop_oldest)"


def with_summary(request: UpstreamRequest, prompt: str, text: str) -> UpstreamRequest:
    """``request`` with the summary after its system prompt (or its transcript's opening text)."""
    body = dict(request.body)
    if request.endpoint == "chat":
        messages = list(body["messages"])
        messages.insert(1 if prompt else 0, {"role": "system", "content": HEAD + text})
        body["messages"] = messages
    else:
        opening = len(prompt.rstrip("\n"))
        sent = str(body["prompt"])
        body["prompt"] = f"{sent[:opening]}\n{HEAD}{text}{sent[opening:]}"
    return dataclasses.replace(request, body=body)


class Summarizer:
    """``ContextPolicy``'s summarizer (``engine.context.Summarizer``)."""

    def __init__(self, failures: FailureLog | None = None, clock: Callable[[], float] = time.time) -> None:
        self._failures = failures
        self._clock = clock

    async def __call__(
        self, context: TurnContext, conv: Conversation, path_ids: Sequence[str], upstream: Upstream
    ) -> None:
        policy, turns = context.policy, context.turns
        request = context.request
        fixed = policy.fixed_cost(request, context.prompt, context.names)
        costs = policy.turn_costs(request, turns, context.names)
        limit = context.fit.window - policy.reserve(request)
        start, previous = _newest_summary(conv, path_ids)
        if previous is not None:
            reused = fixed + self._cost(policy, request, previous) + sum(costs[start:])
            if reused <= limit and self._use(context, previous, start, made=False):
                return
        room = max(MIN_ROOM, min(MAX_ROOM, limit // 8))
        cut = _tail_start(turns, costs, start, limit // 2 - fixed - room)
        # What one call can read with the summary's room: the oldest turns first.
        readable = context.fit.window - room - CALL_OVERHEAD
        if previous is not None:
            readable -= self._cost(policy, request, previous)
        cut = _call_end(turns, costs, start, cut, readable)
        if cut > start:
            made = await self._make(context, conv.id, upstream, previous, turns[start:cut], room)
            if made is not None and self._use(context, made(path_ids[cut - 1]), cut, made=True):
                return
        if previous is not None:
            self._use(context, previous, start, made=False)

    def _cost(self, policy: ContextPolicy, request: UpstreamRequest, summary: Summary) -> int:
        enc = policy.encoding(str(request.body.get("model", "")))
        if request.endpoint == "chat":
            return policy.counter.message(enc, "system", HEAD + summary.content)
        return policy.counter.text(enc, HEAD + summary.content) + 1

    def _use(self, context: TurnContext, summary: Summary, start: int, *, made: bool) -> bool:
        """Refit ``context`` with ``summary`` standing for its turns before ``start``; False
        when even the summary and the question do not fit."""
        policy, prompt, build = context.policy, context.prompt, context.build
        extra = self._cost(policy, context.request, summary)

        def summarized(kept: Sequence[Turn]) -> UpstreamRequest:
            return with_summary(build(kept), prompt, summary.content)

        rest = context.turns[start:]
        try:
            fit = policy.fit(rest, summarized, prompt=prompt, names=context.names, extra=extra)
        except ContextTooLong:
            return False
        context.summarized(fit, rest, summarized, extra, summary, made)
        return True

    async def _make(
        self,
        context: TurnContext,
        conv_id: str,
        upstream: Upstream,
        previous: Summary | None,
        turns: Sequence[Turn],
        room: int,
    ) -> Callable[[str], Summary] | None:
        """A new summary of ``previous`` and ``turns``, given the id of the message it ends at;
        None (logged): the call failed or answered nothing."""
        request = self._request(context, conv_id, previous, turns, room)
        try:
            response = await upstream.call(request)
        except AliceError as error:
            self._fell_back(error.message)
            return None
        text = response_text(request.endpoint, response).strip()
        if not text:
            self._fell_back("the model answered an empty summary")
            return None
        self._count(context, request, response, text)
        done = (0 if previous is None else previous.turns) + sum(1 for role, _ in turns if role == "user")
        summary_id, now = new_message_id(), self._clock()
        before = None if previous is None else previous.id
        return lambda anchor: Summary(summary_id, anchor, text, now, done, before)

    def _request(
        self, context: TurnContext, conv_id: str, previous: Summary | None, turns: Sequence[Turn], room: int
    ) -> UpstreamRequest:
        policy, model = context.policy, str(context.request.body.get("model", ""))
        human, ai = context.names
        lines = [] if previous is None else [HEAD + previous.content]
        lines.extend(f"{human if role == 'user' else ai}: {content}" for role, content in turns)
        # The oldest lines go first if the text would not fit the window with the summary's room.
        enc, budget = policy.encoding(model), context.fit.window - room - CALL_OVERHEAD
        sizes = [policy.counter.text(enc, line) + 1 for line in lines]
        first, total = 0, sum(sizes)
        while total > budget and first < len(lines) - 1:
            total -= sizes[first]
            first += 1
        text = "\n".join(lines[first:])
        body: dict[str, Any] = {"model": model, **SUMMARY.params(), "max_tokens": room}
        if context.request.endpoint == "chat":
            instruction = INSTRUCTION.format(words=room * 3 // 4)
            body["messages"] = [
                {"role": "system", "content": instruction + text},
                {"role": "user", "content": QUESTION},
            ]
        else:
            body["prompt"] = f"{text}\n{QUESTION}\n"
        return UpstreamRequest(context.request.endpoint, body, affinity=conv_id)

    def _count(
        self, context: TurnContext, request: UpstreamRequest, response: Mapping[str, Any], text: str
    ) -> None:
        """The summary call's tokens: the upstream's figures, or ours."""
        policy = context.policy
        enc = policy.encoding(str(request.body.get("model", "")))
        usage = response.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(prompt, int):
            sent = request.body.get("messages") or [{"content": request.body.get("prompt", "")}]
            prompt = sum(policy.counter.text(enc, str(m["content"])) + 4 for m in sent)
        if not isinstance(completion, int):
            completion = policy.counter.text(enc, text)
        context.made_usage = (prompt, completion)

    def _fell_back(self, why: str) -> None:
        if self._failures is None:
            return
        info = current()
        self._failures.record(
            Failure(
                summary=FELL_BACK,
                detail=why,
                route=info.route if info is not None else "-",
                request_id=info.id if info is not None else "-",
                duration=info.elapsed() if info is not None else None,
            )
        )


def _newest_summary(conv: Conversation, path_ids: Sequence[str]) -> tuple[int, Summary | None]:
    """``(index of the first turn after it, the summary)`` of the deepest summary on the path
    before the question, or ``(0, None)``."""
    summaries = conv.summaries
    if summaries:
        for index in range(len(path_ids) - 2, -1, -1):
            found = summaries.get(path_ids[index])
            if found is not None:
                return index + 1, found
    return 0, None


def _tail_start(turns: Sequence[Turn], costs: Sequence[int], start: int, budget: int) -> int:
    """Where the newest whole turns after ``start`` that fit ``budget`` (the question always
    among them) begin: a question's index."""
    kept_from = len(turns) - 1
    total = costs[-1]
    for index in range(len(turns) - 2, start - 1, -1):
        if turns[index][0] != "user":
            continue
        unit = sum(costs[index:kept_from])
        if total + unit > budget:
            break
        total += unit
        kept_from = index
    return kept_from


def _call_end(turns: Sequence[Turn], costs: Sequence[int], start: int, cut: int, budget: int) -> int:
    """Where the oldest whole turns from ``start`` to ``cut`` that fit ``budget`` end (at
    least one turn: a turn too long alone is cut when its call is made)."""
    end, total = start, 0
    for index in range(start + 1, cut + 1):
        if index == cut or turns[index][0] == "user":
            unit = sum(costs[end:index])
            if total + unit > budget and end > start:
                break
            total += unit
            end = index
    return end
