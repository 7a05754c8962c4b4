"""The conversation engine: create, ask, regenerate, rollback… with no HTTP inside.

Rules every dialect relies on:

- One request at a time per conversation (the store's lock): ``ask``,
  ``regenerate`` and ``rollback`` raise ``ConversationBusy`` while another runs.
- A turn is committed only when its answer completed (see ``Answer``); anything
  else leaves the conversation exactly as it was. ``finish`` during an answer
  wins: the answer is still delivered, but the finished conversation is not
  brought back.
- Every call naming a conversation counts as a use and restarts its time to live
  (the original refreshed it on each answer; reading the context or sharing is
  a sign of life too). ``Conversation.last_active`` only moves when it changes.
- Stored sentences are trimmed of leading and trailing newlines like the
  answers returned (the original stored them so, and ``context`` shows them so).
- ``rollback`` drops the removed question with every answer to it; regenerate
  keeps the earlier answer as a sibling of the new one, ``edit`` the earlier
  question (with its branch) as a sibling of the new one.
- ``edit``, ``checkout`` and ``fork`` take the lock too; reading the tree does not.
- Nothing reaches the model unless it may: a conversation holds at most ``max_bytes`` of
  text (``engine.size``: a create or a question past it is ``ConversationTooLarge``), a
  kind's configured model must be in ``[models] allowed``, and the caller's ``admit`` hook
  (the rate limits) is awaited last, right before the model call or the new conversation,
  so a refused request never counts (a repeat of a keyed turn calls no model: no ``admit``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from alice_py import ids
from alice_py.config import ModelsConfig
from alice_py.engine import idempotency
from alice_py.engine.allowed import check_model
from alice_py.engine.answer import Answer
from alice_py.engine.context import ContextPolicy, turn_context
from alice_py.engine.options import DEFAULT_TURN, TurnOptions, with_params
from alice_py.engine.presets import (
    CHAT_NAMES,
    COMPLETION_NAMES,
    DEFAULT_CHAT_PROMPT,
    DEFAULT_COMPLETION_PROMPT,
    FRIEND_CHAT,
    FRIEND_NAMES,
    QUICK,
    SETTINGS,
    Kind,
)
from alice_py.engine.requests import (
    Turn,
    chat_request,
    completion_request,
    context_text,
    conversation_request,
    examples_turns,
    path_turns,
    summary_request,
    turns_to,
)
from alice_py.engine.size import check_prompt, check_question
from alice_py.engine.tree import Conversation, Message
from alice_py.engine.turn import ConversationLock, Plan, Replayed
from alice_py.engine.turn import Turn as LockedTurn
from alice_py.errors import AliceError, BadRequest, ConversationBusy, ConversationNotFound, NotFound
from alice_py.store.base import ConversationStore
from alice_py.upstream.types import Upstream, UpstreamRequest

IdTaken = Callable[[str], Awaitable[bool]]
"""Whether an id is already used outside the store (by a share)."""

Asking = Callable[[Conversation], tuple[Message, bool]]
"""Given the locked conversation: the question a turn answers, and whether it is a new one
(not yet in the tree: ``ask``, ``edit``) or one asked again (``regenerate``)."""

Admit = Callable[[], Awaitable[None]]
"""Awaited right before a model call or a new conversation (the rate limits): raises to refuse."""

MAX_ID_ATTEMPTS = 100
EMPTY_QUESTION = "Question can not be empty"
ROLLBACK_BUSY = "Failed to rollback, cant rollback while AI is thinking"


class ConversationService:
    def __init__(
        self,
        store: ConversationStore,
        upstream: Upstream,
        models: ModelsConfig,
        *,
        clock: Callable[[], float] = time.time,
        id_taken: IdTaken | None = None,
        new_id: Callable[[], str] = ids.new_id,
        new_message_id: Callable[[], str] = ids.new_message_id,
        max_bytes: int = 0,
        renew_every: float | None = None,
        context: ContextPolicy | None = None,
    ) -> None:
        self.store = store
        self.upstream = upstream
        self.models = models
        self._clock = clock
        self._id_taken = id_taken
        self._new_id = new_id
        self._new_message_id = new_message_id
        self.max_bytes = max_bytes
        """Most text (UTF-8 bytes) one conversation may hold; 0 is no limit."""
        self.renew_every = renew_every
        """How often a held lock's lease is renewed; None when the store's locks never lapse."""
        self.context_policy = context
        """Fits each turn's history to the model's window (``engine.context``); None sends it all."""

    # --- conversations -------------------------------------------------------------------

    async def create(
        self,
        kind: Kind,
        *,
        prompt: str | None = None,
        settings: str = "",
        human_name: str | None = None,
        ai_name: str | None = None,
        stream: bool = False,
        model: str | None = None,
        admit: Admit | None = None,
    ) -> Conversation:
        """A new live conversation with a fresh id.

        ``prompt`` None or empty takes the kind's default: the assistant prompt for
        ``create`` (default settings), ChatGPT's for gpt4, none for turbo, FriendChat
        and role play. A completion conversation given ``human_name``/``ai_name`` is
        a role play (roleplay preset, stop at the human's name). Chat kinds keep the
        names as labels (user / assistant by default). ``model`` (already resolved by the
        dialect) replaces the kind's. ``admit`` is awaited once the request is known good.
        """
        conv = self._new(kind, prompt, settings, human_name, ai_name, stream, model)
        if admit is not None:
            await admit()
        await self._insert(conv)
        return conv

    async def adopt(
        self,
        conv_id: str,
        kind: Kind,
        *,
        prompt: str | None = None,
        human_name: str | None = None,
        ai_name: str | None = None,
        stream: bool = False,
    ) -> bool:
        """A new conversation (as ``create`` makes it) under ``conv_id``, an id the client chose,
        unless one is live with that id: whether this call created it. ``BadRequest`` if a share
        has the id, since storing the conversation would replace that share."""
        if await self.store.exists(conv_id):
            return False
        if self._id_taken is not None and await self._id_taken(conv_id):
            raise BadRequest(f"The conversation id {conv_id} is taken by a shared conversation: send another")
        conv = self._new(kind, prompt, "", human_name, ai_name, stream, None)
        conv.id = conv_id
        return await self.store.add(conv)

    def _new(
        self,
        kind: Kind,
        prompt: str | None,
        settings: str,
        human_name: str | None,
        ai_name: str | None,
        stream: bool,
        model: str | None,
    ) -> Conversation:
        """A conversation with no id yet and no message; the settings, model and prompt checked."""
        if settings not in SETTINGS:
            raise BadRequest(f"No such setting: {settings}")
        if model is None:
            check_model(self.models, kind.model(self.models))
        preset, default_prompt, (human, ai) = _defaults(kind, settings, human_name, ai_name)
        prompt = prompt or default_prompt
        check_prompt(self.max_bytes, prompt)
        now = self._clock()
        return Conversation(
            id="",
            kind=kind,
            prompt=prompt,
            human_name=human_name or human,
            ai_name=ai_name or ai,
            preset=preset,
            stream=stream,
            created=now,
            last_active=now,
            model=model,
        )

    async def _insert(self, conv: Conversation) -> None:
        for _ in range(MAX_ID_ATTEMPTS):
            conv.id = self._new_id()
            if self._id_taken is not None and await self._id_taken(conv.id):
                continue
            if await self.store.add(conv):
                return
        raise AliceError("Could not find a free conversation id, please try again")

    async def get(self, conv_id: str) -> Conversation:
        """The live conversation (a use: its time to live restarts)."""
        conv = await self.store.get(conv_id)
        if conv is None:
            raise ConversationNotFound(conv_id)
        await self.store.touch(conv_id)
        return conv

    async def finish(self, conv_id: str) -> None:
        if not await self.store.delete(conv_id):
            raise ConversationNotFound(conv_id)

    async def context(self, conv_id: str) -> str:
        return context_text(await self.get(conv_id))

    async def context_array(self, conv_id: str) -> list[str]:
        return (await self.get(conv_id)).sentences()

    async def is_live(self, conv_id: str) -> bool:
        """Whether a live conversation has this id (not a use: its time to live goes on)."""
        return await self.store.exists(conv_id)

    async def share_snapshot(self, conv_id: str) -> tuple[str, str, list[str]]:
        """``(Id, Prompt, SentenceList)`` for ``/chatgpt/store``."""
        conv = await self.get(conv_id)
        return conv.id, conv.prompt, conv.sentences()

    async def tree(self, conv_id: str) -> dict[str, Any]:
        """Every message, for ``/chatgpt/tree`` (``Conversation.outline``); takes no lock."""
        return (await self.get(conv_id)).outline()

    # --- turns ---------------------------------------------------------------------------

    async def ask(
        self,
        conv_id: str,
        question: str,
        *,
        parent_id: str | None = None,
        idempotency_key: str | None = None,
        admit: Admit | None = None,
        options: TurnOptions = DEFAULT_TURN,
    ) -> Answer:
        """Answer ``question`` after ``parent_id`` (default: the current leaf); ``options`` may
        make an unknown ``parent_id`` a new root and change this turn's request.

        Raises before returning: ``BadRequest`` (empty question, bad key), ``ConversationNotFound``,
        ``NotFound`` (unknown ``parent_id``), ``ConversationBusy``, ``KeyReused``,
        ``ConversationTooLarge``, ``ModelNotFound``, or what ``admit`` raises. Upstream errors
        come from iterating the answer. The returned answer holds the lock: consume or close it.
        Surrounding line breaks are trimmed from the question, as they are from answers, so the
        transcript (``context``) keeps one line per sentence. A repeat of a turn asked with the
        same ``idempotency_key`` gets that turn's answer again (engine.idempotency).
        """
        question = _question(question)
        keyed = idempotency.keyed(idempotency_key, "chat", parent_id or "", question)

        def asking(conv: Conversation) -> tuple[Message, bool]:
            if parent_id is None:
                parent = conv.leaf
            elif options.unknown_parent_is_root and parent_id not in conv.messages:
                parent = None  # an empty history, as node-chatgpt-api answers
            else:
                parent = _message(conv, parent_id).id
            return Message(self._new_message_id(), parent, "user", question, self._clock()), True

        return await self._turn(conv_id, keyed, asking, admit, options)

    async def edit(
        self,
        conv_id: str,
        message_id: str,
        question: str,
        *,
        idempotency_key: str | None = None,
        admit: Admit | None = None,
    ) -> Answer:
        """Ask ``question`` instead of the user message ``message_id``: a sibling of it, answered
        like ``ask``; the old branch stays in the tree. ``NotFound`` for an unknown message,
        ``BadRequest`` for an answer's id."""
        question = _question(question)
        keyed = idempotency.keyed(idempotency_key, "edit", message_id, question)

        def asking(conv: Conversation) -> tuple[Message, bool]:
            edited = _message(conv, message_id)
            if edited.role != "user":
                raise BadRequest(f"Only a question can be edited; message {message_id} is an answer")
            return Message(self._new_message_id(), edited.parent_id, "user", question, self._clock()), True

        return await self._turn(conv_id, keyed, asking, admit)

    async def regenerate(
        self, conv_id: str, *, idempotency_key: str | None = None, admit: Admit | None = None
    ) -> Answer:
        """Ask the last question again; the earlier answer stays in the tree as a sibling."""
        keyed = idempotency.keyed(idempotency_key, "regenerate")

        def asking(conv: Conversation) -> tuple[Message, bool]:
            last = conv.messages[conv.leaf] if conv.leaf is not None else None
            if last is None or last.role != "assistant" or last.parent_id is None:
                raise BadRequest("Nothing to regenerate")
            return conv.messages[last.parent_id], False

        return await self._turn(conv_id, keyed, asking, admit)

    # --- navigating the tree ---------------------------------------------------------------

    async def checkout(self, conv_id: str, message_id: str) -> Conversation:
        """Make the newest leaf below ``message_id`` the current leaf; the updated conversation."""
        lock = self._locked(conv_id)
        async with lock as conv:
            _message(conv, message_id)
            updated = conv.copy()
            updated.leaf = updated.newest_leaf_below(message_id)
            updated.last_active = self._clock()
            await lock.commit(updated)
            return updated

    async def fork(self, conv_id: str, message_id: str | None = None) -> Conversation:
        """A new conversation (same kind, prompt and settings) holding the path from the root to
        ``message_id`` (default: the current leaf). Keyed turns stay with the original."""
        async with self._locked(conv_id) as conv:
            end = conv.leaf if message_id is None else _message(conv, message_id).id
            forked = conv.branch(end, self._clock())
            await self._insert(forked)
            return forked

    async def rollback(self, conv_id: str) -> None:
        """Remove the last question and its answer(s); the leaf moves back two messages."""
        lock = self._locked(conv_id, busy=ROLLBACK_BUSY)
        async with lock as conv:
            path = conv.path()
            if len(path) < 2:
                raise BadRequest("Failed to rollback, dialog is empty")
            question = path[-2]
            updated = conv.copy()
            updated.leaf = question.parent_id
            updated.remove_branch(question.id)
            updated.last_active = self._clock()
            await lock.commit(updated)

    def _locked(self, conv_id: str, *, busy: str = "AI is thinking") -> ConversationLock:
        """``async with``: the conversation, read under its lock (``engine.turn``)."""
        return ConversationLock(self.store, conv_id, renew_every=self.renew_every, busy=busy)

    async def _turn(
        self,
        conv_id: str,
        keyed: idempotency.Keyed | None,
        asking: Asking,
        admit: Admit | None,
        options: TurnOptions = DEFAULT_TURN,
    ) -> Answer:
        """The answer to a repeat of a keyed turn, or else, under the lock, to ``asking``'s question.

        A repeat is recognised with or without the lock: while another request runs, a turn
        kept earlier is still answered (the turn this key asks for, if running, is a 409).
        """

        async def plan(conv: Conversation) -> Plan:
            asked, new_question = asking(conv)
            # A question asked again (regenerate) adds an answer too: checked with nothing added.
            check_question(self.max_bytes, conv, asked.content if new_question else "")
            turns = turns_to(conv, asked) if new_question else path_turns(conv.path(asked.id))
            if conv.model is None:
                check_model(self.models, conv.kind.model(self.models))
            streaming = conv.stream if options.stream is None else options.stream

            def build(kept: Sequence[Turn]) -> UpstreamRequest:
                return _turn_request(conv, kept, self.models, options)

            fitted = await turn_context(self.context_policy, conv, turns, build, options, asked)
            if admit is not None:
                await admit()
            if fitted is not None and fitted.pending:
                await fitted.prepare(self.upstream)  # a summary's model call: after admit
            request = build(turns) if fitted is None else fitted.request
            return Plan(asked, new_question, request, streaming, fitted)

        async def replay(conv: Conversation) -> Answer | None:
            return None if keyed is None else await idempotency.replay(conv, keyed)

        answer_id = self._new_message_id()
        turn = LockedTurn(
            self.store, conv_id, plan, answer_id=answer_id, clock=self._clock,
            keyed=keyed, replay=replay, renew_every=self.renew_every,
        )  # fmt: skip
        answer = Answer(
            self.upstream, None, streaming=False, conversation_id=conv_id, message_id=answer_id,
            parent_id=None, turn=turn, keep_response=options.keep_response,
        )  # fmt: skip
        try:
            return await answer.start()
        except Replayed as kept:
            return kept.answer
        except ConversationBusy:
            replayed = None if keyed is None else await replay(await self.get(conv_id))
            if replayed is None:
                raise
            return replayed

    # --- one-off answers (nothing kept) ----------------------------------------------------

    async def one_off(
        self,
        kind: Kind,
        *,
        question: str,
        prompt: str = "",
        examples: Sequence[str] = (),
        stream: bool = True,
        admit: Admit | None = None,
    ) -> Answer:
        """quickAnswer: ``examples`` (human, AI, human, …) as few-shot history; gpt3 uses the quick preset."""
        if not question:
            raise BadRequest(EMPTY_QUESTION)
        turns = examples_turns(examples, question)
        model = check_model(self.models, kind.model(self.models))
        if kind.is_chat:
            request = chat_request(model, prompt, turns)
        else:
            human, ai = COMPLETION_NAMES
            request = completion_request(model, prompt, QUICK, human, ai, turns)
        return await self._one_off(request, stream, admit)

    async def one_off_chat(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        model: str | None = None,
        stream: bool = False,
        params: Mapping[str, Any] | None = None,
        admit: Admit | None = None,
    ) -> Answer:
        """A chat completion of ``messages`` as given (stateless dialects); default model: turbo's.
        ``model`` is the dialect's, already resolved and checked; ``params``: more fields of the
        request body (``temperature``, ``stop`` …)."""
        if not messages:
            raise BadRequest("messages can not be empty")
        model = model or check_model(self.models, self.models.turbo)
        body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages]}
        if params:
            body = with_params(body, params)
        return await self._one_off(UpstreamRequest(endpoint="chat", body=body), stream, admit)

    async def summary(self, article: str, *, admit: Admit | None = None) -> Answer:
        """A completion of ``<article>\\nTl;dr\\n`` with the summary preset (not streamed)."""
        if not article.strip():
            raise BadRequest("Article can not be empty")
        check_model(self.models, Kind.GPT3.model(self.models))
        return await self._one_off(summary_request(article, self.models), False, admit)

    async def _one_off(self, request: UpstreamRequest, stream: bool, admit: Admit | None) -> Answer:
        if admit is not None:
            await admit()
        return await Answer(
            self.upstream,
            request,
            streaming=stream,
            conversation_id=None,
            message_id=self._new_message_id,
            parent_id=None,
        ).start()


def _question(question: str) -> str:
    question = question.strip("\r\n")
    if not question:
        raise BadRequest(EMPTY_QUESTION)
    return question


def _message(conv: Conversation, message_id: str) -> Message:
    message = conv.messages.get(message_id)
    if message is None:
        raise NotFound(f"failed to find message with provided id: {message_id}")
    return message


def _defaults(
    kind: Kind, settings: str, human_name: str | None, ai_name: str | None
) -> tuple[str, str, tuple[str, str]]:
    """``(preset, default prompt, (human name, AI name))`` for a new conversation."""
    if kind is Kind.TURBO:
        return "default", "", CHAT_NAMES
    if kind is Kind.GPT4:
        return "default", DEFAULT_CHAT_PROMPT, CHAT_NAMES
    if settings == FRIEND_CHAT:
        return "friend", "", FRIEND_NAMES
    if human_name is not None or ai_name is not None:
        return "roleplay", "", COMPLETION_NAMES
    return "default", DEFAULT_COMPLETION_PROMPT, COMPLETION_NAMES


def _turn_request(
    conv: Conversation, turns: Sequence[Turn], models: ModelsConfig, options: TurnOptions
) -> UpstreamRequest:
    """What answers the last of ``turns``, with this turn's prompt and parameters if it has some."""
    if options.prompt is not None:
        conv = dataclasses.replace(conv, prompt=options.prompt)  # for this request only
    request = conversation_request(conv, turns, models)
    if not options.params:
        return request
    return dataclasses.replace(request, body=with_params(request.body, options.params))
