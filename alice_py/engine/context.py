"""Conversations that always fit: the stored history cut to the model's window before it is sent.

One call (``ContextPolicy.fit``) sits where the engine builds a turn's upstream request. It
counts the whole request (``engine.tokens``), and when it does not fit the window less the
room kept for the answer (``[context] reserve``, or the request's own ``max_tokens`` when
larger), applies ``[context] policy``:

- ``drop_oldest``: the system prompt (the transcript's opening text for completion kinds) and
  the newest turns that fit are sent; whole turns (a question with its answer) are left out,
  oldest first. Nothing is added in their place. The stored conversation is not touched.
- ``summarize``: the oldest turns are sent as a model-made summary instead, kept in the
  conversation and reused (``engine.summarize``, the ``Summarizer`` it is given); ``drop_oldest``
  when no summary can be had.
- ``error``: ``ContextTooLong`` (a 400 naming both sizes), nothing sent.

Either way a question that cannot fit even alone is a ``ContextTooLong``: sending it would
only earn the upstream's refusal.

When the upstream still refuses for length (its tokenizer counts more than ours),
``refit`` gives the one retry ``drop_oldest`` makes, with the budget scaled by the refusal's
own numbers so that the retry fits by the upstream's count.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from alice_py.config import ContextConfig, ModelsConfig
from alice_py.engine.options import TurnOptions
from alice_py.engine.requests import Turn, conversation_request, path_turns
from alice_py.engine.tokens import REPLY_PRIMING, TokenCounter, encoding_for_model
from alice_py.errors import BadRequest
from alice_py.upstream.errors import UpstreamError
from alice_py.upstream.types import UpstreamRequest

if TYPE_CHECKING:
    from alice_py.engine.tree import Conversation, Message, Summary
    from alice_py.upstream.types import Upstream

Build = Callable[[Sequence[Turn]], UpstreamRequest]
"""The request answering the last of the given turns (the engine's ``_turn_request``)."""


class WindowSource(Protocol):
    """The windows the upstream reports (``upstream.windows.ReportedWindows``)."""

    def known(self, model: str) -> int | None: ...

    async def get(self, model: str) -> int | None: ...


class Summarizer(Protocol):
    """Under ``policy = "summarize"``: refits a turn that left turns out so that a summary
    stands for them (``engine.summarize.Summarizer``); leaves it as it is when it cannot."""

    async def __call__(
        self, context: TurnContext, conv: Conversation, path_ids: Sequence[str], upstream: Upstream
    ) -> None: ...


_LABEL_SEPARATOR = 2
"""``\\n`` and ``: `` around a transcript sentence's speaker name: about a token each."""


class ContextTooLong(BadRequest):
    """400: the conversation (or the question alone) does not fit the model's window."""


@dataclass(frozen=True, slots=True)
class Fit:
    """What was decided for one request (the ``X-Context-*`` headers tell it)."""

    request: UpstreamRequest
    tokens: int
    """Our count of the request sent."""
    window: int
    dropped: int
    """Turns (a question with its answers) left out, oldest first."""
    full: int
    """Our count of the whole context (nothing left out)."""
    turns: int
    """Turns in the whole context, the question asked included."""


def _units(turns: Sequence[Turn]) -> list[int]:
    """Where each droppable turn starts: at each question before the last one."""
    return [index for index, (role, _) in enumerate(turns[:-1]) if role == "user"] or [0]


def format_tokens(count: int) -> str:
    return f"{count:,}"


class ContextPolicy:
    def __init__(
        self,
        config: ContextConfig,
        counter: TokenCounter | None = None,
        reported: WindowSource | None = None,
        on_usage: Callable[[int, int], None] | None = None,
        summarizer: Summarizer | None = None,
    ) -> None:
        self.config = config
        self.counter = counter if counter is not None else TokenCounter()
        self._reported = reported
        self.on_usage = on_usage
        """Told each kept answer's (prompt, completion) tokens: the totals per key and client."""
        self.summarizer = summarizer if config.policy == "summarize" else None
        """Makes and reuses the summaries of ``policy = "summarize"``; None for the other policies."""

    def with_policy(self, policy: str) -> ContextPolicy:
        """This policy's windows, counter and usage with another policy (``truncation`` of
        the Responses API picks its own: ``disabled`` is ``error``, ``auto`` is ``drop_oldest``)."""
        config = dataclasses.replace(self.config, policy=policy)
        return ContextPolicy(config, self.counter, self._reported, self.on_usage)

    def window(self, model: str) -> int:
        """``[context] windows`` for the model, else the upstream's figure, else the default."""
        configured = self.config.windows.get(model)
        if configured is not None:
            return configured
        reported = self._reported.known(model) if self._reported is not None else None
        return reported or self.config.default_window

    async def learn(self, model: str) -> bool:
        """Ask the upstream for ``model``'s window if that may change it: whether it did."""
        if model in self.config.windows or self._reported is None or self._reported.known(model):
            return False
        return await self._reported.get(model) is not None

    def encoding(self, model: str) -> str:
        return encoding_for_model(model, self.config.default_encoding)

    def reserve(self, request: UpstreamRequest) -> int:
        asked = request.body.get("max_completion_tokens", request.body.get("max_tokens"))
        own = asked if isinstance(asked, int) and not isinstance(asked, bool) else 0
        return max(self.config.reserve, own)

    # --- counting ------------------------------------------------------------------------------

    def turn_costs(
        self, request: UpstreamRequest, turns: Sequence[Turn], names: tuple[str, str]
    ) -> list[int]:
        enc = self.encoding(str(request.body.get("model", "")))
        count = self.counter
        if request.endpoint == "chat":
            return [count.message(enc, role, content) for role, content in turns]
        human, ai = names
        return [
            count.text(enc, human if role == "user" else ai) + count.text(enc, content) + _LABEL_SEPARATOR
            for role, content in turns
        ]

    def fixed_cost(self, request: UpstreamRequest, prompt: str, names: tuple[str, str]) -> int:
        """What the request costs besides its turns: the system prompt and the reply's priming,
        or the transcript's opening text and the answer's ``\n<AI name>: ``."""
        enc = self.encoding(str(request.body.get("model", "")))
        if request.endpoint == "chat":
            return REPLY_PRIMING + (self.counter.message(enc, "system", prompt) if prompt else 0)
        return self.counter.text(enc, prompt) + self.counter.text(enc, names[1]) + _LABEL_SEPARATOR

    def measure(self, conv: Conversation, models: ModelsConfig) -> tuple[int, int]:
        """``(tokens, window)``: ``conv``'s context now (prompt, history and the format's
        overhead, nothing left out) by our count, corrected by the upstream's own count of an
        earlier request where it gave one, and its model's window."""
        path = conv.path()
        turns = path_turns(path)
        request = conversation_request(conv, turns, models)
        names = (conv.human_name, conv.ai_name)
        fixed = self.fixed_cost(request, conv.prompt, names)
        costs = self.turn_costs(request, turns, names)
        tokens = fixed + sum(costs)
        anchor = anchor_on(conv, [m.id for m in path])
        if anchor is not None:
            tokens += anchor[1] - (fixed + sum(costs[: anchor[0]]))
        return tokens, self.window(str(request.body.get("model", "")))

    # --- deciding -----------------------------------------------------------------------------

    def fit(
        self,
        turns: Sequence[Turn],
        build: Build,
        *,
        prompt: str,
        names: tuple[str, str],
        budget: int | None = None,
        anchor: tuple[int, int] | None = None,
        extra: int = 0,
    ) -> Fit:
        """The request to send for ``turns`` (ending with the question), by the policy.

        ``prompt`` is the system prompt (or the transcript's opening text) ``build`` puts in;
        ``names`` the transcript's (human, AI) names. ``budget`` replaces the window less the
        reserve (the retry after a refusal). ``anchor``: ``(n, tokens)``, the upstream's own
        count of an earlier request of the first ``n`` of these turns (its ``usage``): the
        whole is then that count and ours of what was added since (``Fit.full``). Where the
        upstream counts more than we do, the budget shrinks by that ratio, so the request fits
        by its count without a refusal first; where it counts less, ours decides (the
        headers tell our count of what was sent). ``extra``: what ``build`` adds besides the
        prompt and the turns (a summary), never left out."""
        request = build(turns)
        model = str(request.body.get("model", ""))
        window = self.window(model)
        fixed = self.fixed_cost(request, prompt, names) + extra
        costs = self.turn_costs(request, turns, names)
        ours = fixed + sum(costs)
        full = ours
        room = self.reserve(request)
        limit = budget if budget is not None else window - room
        if anchor is not None and 0 < anchor[0] <= len(turns):
            prefix = fixed + sum(costs[: anchor[0]])
            full += anchor[1] - prefix
            if budget is None and anchor[1] > prefix:
                limit = limit * prefix // anchor[1]
        units = _units(turns)
        if ours <= limit:
            return Fit(request, ours, window, 0, full, len(units) + 1 if len(turns) > 1 else 1)
        if self.config.policy == "error" and budget is None:
            raise ContextTooLong(
                f"this conversation is {format_tokens(max(full, ours))} tokens; the model's window is "
                f"{format_tokens(window)} ({format_tokens(room)} kept for the answer): "
                "roll back or start a new one"
            )
        # The newest turns that fit, whole: walk back from the question.
        kept_from = len(turns) - 1
        total = fixed + costs[-1]
        if total > limit:
            raise ContextTooLong(
                f"this question is {format_tokens(total)} tokens with the prompt; the model's window is "
                f"{format_tokens(window)} ({format_tokens(room)} kept for the answer): "
                "send a shorter one"
            )
        for start in reversed(units):
            unit_cost = sum(costs[start:kept_from])
            if total + unit_cost > limit:
                break
            total += unit_cost
            kept_from = start
        dropped = sum(1 for start in units if start < kept_from)
        if len(turns) == 1:
            dropped = 0
        kept = turns[kept_from:]
        return Fit(build(kept), total, window, dropped, full, len(units) + 1)

    def refit(
        self,
        error: UpstreamError,
        fitted: Fit,
        turns: Sequence[Turn],
        build: Build,
        *,
        prompt: str,
        names: tuple[str, str],
        extra: int = 0,
    ) -> Fit | None:
        """The one retry after the upstream refused ``fitted`` for length, or None: not such
        a refusal, the policy is ``error``, or leaving out more turns cannot make it fit (the
        question alone is too long by the upstream's count): its own refusal then stands."""
        if self.config.policy == "error":
            return None
        numbers = length_refusal(error)
        if numbers is None:
            return None
        limit, reported = numbers
        budget = fitted.tokens * limit // max(reported, 1) - self.reserve(fitted.request)
        try:
            budget = min(budget, fitted.tokens - 1)
            refitted = self.fit(turns, build, prompt=prompt, names=names, budget=budget, extra=extra)
        except ContextTooLong:
            return None
        return refitted if refitted.dropped > fitted.dropped else None


_OPENAI_LENGTH = re.compile(
    r"maximum context length is (\d+) tokens.*?(?:resulted in|requested) (\d+) tokens(?: \((\d+) in)?",
    re.S | re.I,
)
"""OpenAI's "… is 8192 tokens. However, your messages resulted in 9000 tokens", and vLLM's
"… is 2048 tokens. However, you requested 2100 tokens (2000 in the messages, 100 in the
completion)", where the prompt's own figure is the one taken."""


def length_refusal(error: UpstreamError) -> tuple[int, int] | None:
    """``(the upstream's limit, its count of what was sent)`` when ``error`` is a refusal for
    length: OpenAI's (and vLLM's) ``context_length_exceeded`` text, or llama.cpp's
    ``exceed_context_size_error`` with ``n_ctx`` and ``n_prompt_tokens``."""
    if error.upstream_status != 400:
        return None
    obj: Mapping[str, object] = error.error_object or {}
    n_ctx, n_prompt = obj.get("n_ctx"), obj.get("n_prompt_tokens")
    if isinstance(n_ctx, int) and isinstance(n_prompt, int):
        return n_ctx, n_prompt
    found = _OPENAI_LENGTH.search(f"{error.detail} {obj.get('message', '')}")
    if found is None:
        return None
    return int(found.group(1)), int(found.group(3) or found.group(2))


def anchor_on(conv: Conversation, path_ids: Sequence[str]) -> tuple[int, int] | None:
    """``conv.anchor`` as ``(turns, upstream tokens)`` when its question is on this path (the
    earlier request was a prefix of it), else None."""
    if conv.anchor is None:
        return None
    question, sent, tokens = conv.anchor
    if sent <= len(path_ids) and path_ids[sent - 1] == question:
        return sent, tokens
    return None


def path_ids_to(conv: Conversation, last: str | None) -> list[str]:
    ids: list[str] = []
    node = last
    while node is not None:
        ids.append(node)
        node = conv.messages[node].parent_id
    ids.reverse()
    return ids


class TurnContext:
    """One turn's fitting: the request to send now, and the one retry after a length refusal."""

    __slots__ = (
        "_pending", "_retried", "build", "extra", "fit", "made", "made_usage", "names", "policy",
        "prompt", "reported_usage", "summary", "turns",
    )  # fmt: skip

    def __init__(
        self,
        policy: ContextPolicy,
        turns: Sequence[Turn],
        build: Build,
        prompt: str,
        names: tuple[str, str],
        anchor: tuple[int, int] | None = None,
    ) -> None:
        self.policy = policy
        self.turns = turns
        """The turns ``fit`` was made from (after a summary: those it does not stand for)."""
        self.build = build
        self.prompt = prompt
        self.names = names
        self.extra = 0
        """Our count of what ``build`` adds besides the prompt and the turns (the summary)."""
        self._retried = False
        self.fit = policy.fit(turns, build, prompt=prompt, names=names, anchor=anchor)
        self.reported_usage: Mapping[str, Any] | None = None
        """The upstream's ``usage`` for this answer, when it sent one (``engine.answer``)."""
        self.summary: Summary | None = None
        """The summary sent in place of the oldest turns, if any."""
        self.made: Summary | None = None
        """That summary when this turn made it: kept with the turn."""
        self.made_usage = (0, 0)
        """The (prompt, completion) tokens of the call that made it."""
        self._pending: tuple[Conversation, Sequence[str]] | None = None

    @property
    def request(self) -> UpstreamRequest:
        return self.fit.request

    @property
    def pending(self) -> bool:
        """Whether ``prepare`` has a summary to make or reuse (never when the turn fits)."""
        return self._pending is not None

    async def prepare(self, upstream: Upstream) -> None:
        """Once the turn is admitted: under ``summarize``, a turn that leaves turns out is
        refitted with a summary standing for them (made now, by a model call, or reused)."""
        pending, self._pending = self._pending, None
        summarizer = self.policy.summarizer
        if pending is not None and summarizer is not None:
            await summarizer(self, pending[0], pending[1], upstream)

    def summarized(
        self, fit: Fit, turns: Sequence[Turn], build: Build, extra: int, summary: Summary, made: bool
    ) -> None:
        """Send ``fit``: ``summary`` (``made`` by this turn, or reused) and then ``turns``."""
        self.fit = dataclasses.replace(fit, full=self.fit.full, turns=self.fit.turns)
        self.turns, self.build, self.extra, self.summary = turns, build, extra, summary
        self.made = summary if made else None

    def retry(self, error: UpstreamError) -> UpstreamRequest | None:
        """The request to send instead after ``error``, once; None: let ``error`` stand.
        A retry that cannot fit raises its ``ContextTooLong``."""
        if self._retried:
            return None
        self._retried = True
        refitted = self.policy.refit(
            error, self.fit, self.turns, self.build, prompt=self.prompt, names=self.names, extra=self.extra
        )
        if refitted is None:
            return None
        self.fit = dataclasses.replace(refitted, full=self.fit.full, turns=self.fit.turns)
        return refitted.request

    def usage(self, answer: str) -> tuple[int, int]:
        """``(prompt, completion)`` tokens of this answer: the upstream's figures, or ours."""
        reported = self.reported_usage or {}
        prompt, completion = reported.get("prompt_tokens"), reported.get("completion_tokens")
        if not isinstance(prompt, int):
            prompt = self.fit.tokens
        if not isinstance(completion, int):
            model = str(self.fit.request.body.get("model", ""))
            completion = self.policy.counter.text(self.policy.encoding(model), answer)
        return prompt, completion

    def record(self, conv: Conversation, answer: str, question_id: str) -> None:
        """Into the conversation about to be kept: this answer's usage (and its summary's),
        what it left out, the summary it made, and (sent whole, with the upstream's count) the
        anchor later counts start from."""
        prompt, completion = self.usage(answer)
        reported = (self.reported_usage or {}).get("prompt_tokens")
        whole = not self.fit.dropped and self.summary is None
        if isinstance(reported, int) and whole and self.prompt == conv.prompt:
            conv.anchor = (question_id, len(self.turns), reported)
        before = conv.usage or (0, 0)
        made_prompt, made_completion = self.made_usage
        conv.usage = (before[0] + prompt + made_prompt, before[1] + completion + made_completion)
        conv.dropped = self.fit.dropped
        conv.summarized = 0 if self.summary is None else self.summary.turns
        if self.made is not None:
            conv.summaries = {**(conv.summaries or {}), self.made.anchor: self.made}
        if self.policy.on_usage is not None:
            self.policy.on_usage(prompt + made_prompt, completion + made_completion)

    def headers(self) -> dict[str, str]:
        """``X-Context-Tokens`` (our count of the request sent), ``-Window``, ``-Dropped``."""
        return {
            "X-Context-Tokens": str(self.fit.tokens),
            "X-Context-Window": str(self.fit.window),
            "X-Context-Dropped": str(self.fit.dropped),
        }


async def turn_context(
    policy: ContextPolicy | None,
    conv: Conversation,
    turns: Sequence[Turn],
    build: Build,
    options: TurnOptions,
    asked: Message,
) -> TurnContext | None:
    """The engine's one call: ``conv``'s turn answering ``asked`` fitted by ``policy`` (None: no
    policy, all sent).

    A turn that does not fit the default window makes the policy ask the upstream for the
    model's own window first (``WindowSource``), once per process. Under ``summarize``, one
    that still leaves turns out is refitted by ``TurnContext.prepare``."""
    if policy is None:
        return None
    prompt = conv.prompt if options.prompt is None else options.prompt
    names = (conv.human_name, conv.ai_name)
    # The upstream's count of an earlier request holds only for the same prompt.
    last = asked.id if asked.id in conv.messages else asked.parent_id
    anchor = None
    if options.prompt is None and conv.anchor is not None:
        anchor = anchor_on(conv, [*path_ids_to(conv, last), *([] if last == asked.id else [asked.id])])
    try:
        fitted = TurnContext(policy, turns, build, prompt, names, anchor)
    except ContextTooLong:
        if not await policy.learn(str(build(turns[-1:]).body.get("model", ""))):
            raise
    else:
        if not (fitted.fit.dropped or fitted.fit.tokens < fitted.fit.full):
            return fitted
        if not await policy.learn(str(fitted.request.body.get("model", ""))):
            return _summarizing(policy, fitted, conv, last, asked)
    return _summarizing(policy, TurnContext(policy, turns, build, prompt, names, anchor), conv, last, asked)


def _summarizing(
    policy: ContextPolicy, fitted: TurnContext, conv: Conversation, last: str | None, asked: Message
) -> TurnContext:
    """``fitted``, to be refitted with a summary by ``prepare`` when it leaves turns out."""
    if policy.summarizer is not None and fitted.fit.dropped:
        fitted._pending = (conv, [*path_ids_to(conv, last), *([] if last == asked.id else [asked.id])])
    return fitted


def context_info(policy: ContextPolicy, conv: Conversation, models: ModelsConfig) -> dict[str, Any]:
    """``/chatgpt/contextInfo``: the conversation's size, its model's window, what the last
    answer's request left out, and the tokens its answers used."""
    tokens, window = policy.measure(conv, models)
    prompt_tokens, completion_tokens = conv.usage or (0, 0)
    return {
        "tokens": tokens,
        "window": window,
        "dropped_turns": conv.dropped,
        "summarized_turns": conv.summarized,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
