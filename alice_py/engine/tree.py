"""A conversation as a tree of messages.

Alice's linear sentence list is the path from the root to the current leaf;
node-chatgpt-api's ``parentMessageId`` continues from any other message, and
regenerate adds a sibling answer instead of destroying the old one.

Kept compact (slots, one dict of messages, no per-message dicts) because tens of
thousands of conversations live in memory at once. The engine never changes a
conversation it got from a store: it takes a :meth:`Conversation.copy`, changes
that, and puts it back (a Redis store hands out copies anyway).

Message ids are 22 random alphanumerics (``ids.new_message_id``): opaque strings,
as node-chatgpt-api clients expect, and shorter than a uuid string.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from alice_py.engine.presets import Kind

Role = Literal["user", "assistant"]
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    parent_id: str | None
    role: Role
    content: str
    created: float


@dataclass(frozen=True, slots=True)
class KeyedTurn:
    """A turn asked with an ``Idempotency-Key``: what a repeat of the request gets back."""

    fingerprint: str
    """Which request it was (route, message, body): the same key with another one is refused."""
    answer_id: str
    parent_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Summary:
    """A model-made summary of the path from the root down to ``anchor`` (the answer that ends
    its last turn), sent in place of those turns under ``[context] policy = "summarize"``
    (``engine.summarize``). Not a message: no path goes through it, so the linear routes,
    ``checkout`` and "n/m" never see it; ``/chatgpt/tree`` lists it under ``summaries``."""

    id: str
    anchor: str
    content: str
    created: float
    turns: int
    """The turns it stands for, counted from the root (those of ``previous`` included)."""
    previous: str | None = None
    """The summary it was made from (with the turns after it), if any."""


@dataclass(slots=True)
class Conversation:
    id: str
    kind: Kind
    prompt: str
    human_name: str
    ai_name: str
    preset: str
    """Name of the request preset (completion kind only; see ``presets.PRESETS``)."""
    stream: bool
    created: float
    last_active: float
    model: str | None = None
    """Overrides the kind's configured model (dialects that let the client pick one)."""
    leaf: str | None = None
    messages: dict[str, Message] = field(default_factory=dict)
    """Every message by id, parents before children (insertion order)."""
    turns_by_key: dict[str, KeyedTurn] | None = None
    """The turns asked with an ``Idempotency-Key``, by key (see ``engine.idempotency``); None
    until the first, so the many conversations that never use a key carry no dict."""
    usage: tuple[int, int] | None = None
    """Prompt and completion tokens of every answer kept, summed (the upstream's figures, or
    ours where it gave none); None before the first (``engine.context``)."""
    dropped: int = 0
    """Turns left out of the request of the last answer (``[context] policy``)."""
    anchor: tuple[str, int, int] | None = None
    """The last request sent whole whose ``usage`` the upstream gave: (its question's id, the
    sentences it held, the upstream's prompt tokens). Later counts start from it."""
    summaries: dict[str, Summary] | None = None
    """The summaries made for it, by the id of their ``anchor`` message (at most one each);
    None until the first, so most conversations carry no dict."""
    summarized: int = 0
    """Turns the last answer's request sent as a summary (``[context] policy = "summarize"``)."""

    def path(self, leaf: str | None = None) -> list[Message]:
        """The messages from the root down to ``leaf`` (default: the current leaf)."""
        node = self.leaf if leaf is None else leaf
        result: list[Message] = []
        while node is not None:
            message = self.messages[node]
            result.append(message)
            node = message.parent_id
        result.reverse()
        return result

    def sentences(self) -> list[str]:
        return [message.content for message in self.path()]

    def sentence_count(self) -> int:
        count = 0
        node = self.leaf
        while node is not None:
            count += 1
            node = self.messages[node].parent_id
        return count

    def expires_at(self, ttl: float) -> float:
        """When the conversation expires if unused from ``last_active`` on (at most 2 sentences: ttl/2)."""
        return self.last_active + (ttl if self.sentence_count() > 2 else ttl / 2)

    def copy(self) -> Conversation:
        """An independent conversation (messages are immutable, so they are shared)."""
        # Every field by position through one attrgetter: a sixth of ``dataclasses.replace``'s
        # cost, on every turn's commit (docs/performance.md, issue 12).
        copied = Conversation(*_all_fields(self))
        copied.messages = dict(self.messages)
        if self.turns_by_key is not None:
            copied.turns_by_key = dict(self.turns_by_key)
        if self.summaries is not None:
            copied.summaries = dict(self.summaries)
        return copied

    def branch(self, end: str | None, now: float) -> Conversation:
        """A new conversation (no id yet) with these settings, holding the path to ``end``."""
        branched = dataclasses.replace(
            self,
            id="",
            created=now,
            last_active=now,
            leaf=end,
            messages={},
            turns_by_key=None,
            usage=None,
            dropped=0,
            anchor=None,
            summaries=None,
            summarized=0,
        )
        for message in self.path(end) if end is not None else ():
            branched.add(message)
            # A summary of a part of the path stays valid in the branch: it is not made again.
            summary = (self.summaries or {}).get(message.id)
            if summary is not None:
                branched.summaries = {**(branched.summaries or {}), message.id: summary}
        return branched

    def newest_leaf_below(self, message_id: str) -> str:
        """The most recently added message with no children at or below ``message_id``.

        Children are always added after their parents, so the last descendant in insertion
        order has no children: it is that leaf (``message_id`` itself when it has none).
        """
        below = {message_id}
        newest = message_id
        for message in self.messages.values():
            if message.parent_id in below:
                below.add(message.id)
                newest = message.id
        return newest

    def outline(self) -> dict[str, Any]:
        """The whole tree as ``POST /chatgpt/tree`` shows it (docs/tree.md)."""
        children: dict[str, list[str]] = {message_id: [] for message_id in self.messages}
        roots: list[str] = []
        for message in self.messages.values():
            (roots if message.parent_id is None else children[message.parent_id]).append(message.id)
        return {
            "id": self.id,
            "prompt": self.prompt,
            "leaf": self.leaf,
            "roots": roots,
            "messages": [
                {
                    "id": m.id,
                    "parent_id": m.parent_id,
                    "role": m.role,
                    "content": m.content,
                    "created": int(m.created),
                    "children": children[m.id],
                }
                for m in self.messages.values()
            ],
            "summaries": [
                {
                    "id": s.id,
                    "anchor_id": s.anchor,
                    "content": s.content,
                    "created": int(s.created),
                    "turns": s.turns,
                    "previous_id": s.previous,
                }
                for s in (self.summaries or {}).values()
            ],
        }

    def add(self, message: Message) -> None:
        if message.parent_id is not None and message.parent_id not in self.messages:
            raise ValueError(f"parent message {message.parent_id} is not in conversation {self.id}")
        self.messages[message.id] = message

    def remove_branch(self, root: str) -> None:
        """Drop ``root`` and every message below it (the leaf must not be among them)."""
        doomed = {root}
        # Parents come before children in ``messages``, so one pass finds every level.
        for message in self.messages.values():
            if message.parent_id in doomed:
                doomed.add(message.id)
        for message_id in doomed:
            del self.messages[message_id]
        if self.summaries is not None:
            # A summary of a removed message's path is removed with it (its later ones too:
            # they are anchored further down).
            self.summaries = {a: s for a, s in self.summaries.items() if a not in doomed} or None

    def to_json(self) -> bytes:
        # Keyed turns are written only when there are some, so most saved conversations stay as they were.
        rows = [_keyed_row(*item) for item in (self.turns_by_key or {}).items()]
        keyed: dict[str, Any] = {"keyed": rows} if rows else {}
        if self.usage is not None:
            keyed["usage"] = list(self.usage)
        if self.dropped:
            keyed["dropped"] = self.dropped
        if self.anchor is not None:
            keyed["anchor"] = list(self.anchor)
        if self.summaries:
            keyed["summaries"] = [
                [s.id, s.anchor, s.content, s.created, s.turns, s.previous] for s in self.summaries.values()
            ]
        if self.summarized:
            keyed["summarized"] = self.summarized
        return orjson.dumps(
            {
                "v": FORMAT_VERSION,
                "id": self.id,
                "kind": self.kind.value,
                "prompt": self.prompt,
                "human_name": self.human_name,
                "ai_name": self.ai_name,
                "preset": self.preset,
                "stream": self.stream,
                "model": self.model,
                "created": self.created,
                "last_active": self.last_active,
                "leaf": self.leaf,
                "messages": [
                    [m.id, m.parent_id, m.role, m.content, m.created] for m in self.messages.values()
                ],
                **keyed,
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Conversation:
        """The conversation :meth:`to_json` wrote; ``ValueError`` if ``data`` is not one."""
        try:
            raw = orjson.loads(data)
            return _decode(raw)
        except (KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"not a saved conversation: {exc!r}") from None


_all_fields = operator.attrgetter(*(item.name for item in dataclasses.fields(Conversation)))


def _decode(raw: dict[str, Any]) -> Conversation:
    if raw["v"] != FORMAT_VERSION:
        raise ValueError(f"unknown conversation format version {raw['v']!r}")
    conv = Conversation(
        id=_text(raw["id"]),
        kind=Kind(raw["kind"]),
        prompt=_text(raw["prompt"]),
        human_name=_text(raw["human_name"]),
        ai_name=_text(raw["ai_name"]),
        preset=_text(raw["preset"]),
        stream=bool(raw["stream"]),
        created=float(raw["created"]),
        last_active=float(raw["last_active"]),
        model=None if raw["model"] is None else _text(raw["model"]),
    )
    for message_id, parent_id, role, content, created in raw["messages"]:
        # Share the role constants and the parent's id string: a loaded tree is as small as a live one.
        shared_role = _role(role)
        parent = None if parent_id is None else conv.messages[parent_id].id
        conv.add(Message(_text(message_id), parent, shared_role, _text(content), float(created)))
    leaf = raw["leaf"]
    if leaf is not None and leaf not in conv.messages:
        raise ValueError(f"leaf message {leaf!r} is not in the conversation")
    conv.leaf = None if leaf is None else conv.messages[leaf].id
    for key, fingerprint, answer_id, parent_id, text in raw.get("keyed", ()):
        turn = KeyedTurn(_text(fingerprint), _text(answer_id), _text(parent_id), _text(text))
        conv.turns_by_key = {**(conv.turns_by_key or {}), _text(key): turn}
    if "usage" in raw:
        prompt_tokens, completion_tokens = raw["usage"]
        conv.usage = (int(prompt_tokens), int(completion_tokens))
    conv.dropped = int(raw.get("dropped", 0))
    if "anchor" in raw:
        question, sent, tokens = raw["anchor"]
        conv.anchor = (_text(question), int(sent), int(tokens))
    for summary_id, anchor, content, created, turns, previous in raw.get("summaries", ()):
        if anchor not in conv.messages:
            raise ValueError(f"summary {summary_id!r} is anchored at an unknown message {anchor!r}")
        summary = Summary(
            _text(summary_id),
            conv.messages[anchor].id,
            _text(content),
            float(created),
            int(turns),
            None if previous is None else _text(previous),
        )
        conv.summaries = {**(conv.summaries or {}), summary.anchor: summary}
    conv.summarized = int(raw.get("summarized", 0))
    return conv


def _keyed_row(key: str, turn: KeyedTurn) -> list[str]:
    return [key, turn.fingerprint, turn.answer_id, turn.parent_id, turn.text]


def _role(value: object) -> Role:
    if value == "user":
        return "user"
    if value == "assistant":
        return "assistant"
    raise ValueError(f"unknown message role {value!r}")


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value
