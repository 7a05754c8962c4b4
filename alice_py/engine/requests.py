"""What is sent upstream for a conversation path, and Alice's plain-text transcript."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from alice_py.config import ModelsConfig
from alice_py.engine.presets import CHAT_NAMES, PRESETS, SUMMARY, Kind, Preset
from alice_py.engine.tree import Conversation, Message, Role
from alice_py.upstream.types import UpstreamRequest

Turn = tuple[Role, str]
"""One sentence of the history: who said it and what."""


def transcript(prompt: str, human_name: str, ai_name: str, turns: Iterable[Turn]) -> str:
    """The prompt without its trailing newlines, a newline, then ``\\n<name>: <sentence>`` per turn.

    This is Alice's ``context`` text, and (with ``\\n<AI name>: `` appended) the
    prompt of a completion-kind conversation.
    """
    parts = [prompt.rstrip("\n"), "\n"]
    for role, content in turns:
        parts.append(f"\n{human_name if role == 'user' else ai_name}: {content}")
    return "".join(parts)


def path_turns(path: Iterable[Message]) -> list[Turn]:
    return [(message.role, message.content) for message in path]


def turns_to(conv: Conversation, asked: Message) -> list[Turn]:
    """The path to a new question ``asked`` (not yet in ``conv``), then the question."""
    before = conv.path(asked.parent_id) if asked.parent_id is not None else []
    return [*path_turns(before), ("user", asked.content)]


def context_text(conv: Conversation) -> str:
    """Alice's ``context``: the conversation's names for completion kinds, user / assistant for chat."""
    human, ai = CHAT_NAMES if conv.kind.is_chat else (conv.human_name, conv.ai_name)
    return transcript(conv.prompt, human, ai, ((m.role, m.content) for m in conv.path()))


def completion_request(
    model: str, prompt: str, preset: Preset, human_name: str, ai_name: str, turns: Sequence[Turn]
) -> UpstreamRequest:
    body: dict[str, Any] = {
        "model": model,
        "prompt": transcript(prompt, human_name, ai_name, turns) + f"\n{ai_name}: ",
        **preset.params(),
    }
    stop = preset.stop(human_name, ai_name)
    if stop:
        body["stop"] = stop
    return UpstreamRequest(endpoint="completion", body=body)


def chat_request(model: str, prompt: str, turns: Sequence[Turn]) -> UpstreamRequest:
    """``system`` = the prompt (left out when empty), then the turns with their own roles."""
    messages = [{"role": "system", "content": prompt}] if prompt else []
    messages.extend({"role": role, "content": content} for role, content in turns)
    return UpstreamRequest(endpoint="chat", body={"model": model, "messages": messages})


def conversation_request(conv: Conversation, turns: Sequence[Turn], models: ModelsConfig) -> UpstreamRequest:
    """The request that answers the last of ``turns`` (a question) in ``conv``."""
    model = conv.model or conv.kind.model(models)
    if conv.kind.is_chat:
        request = chat_request(model, conv.prompt, turns)
    else:
        preset = PRESETS[conv.preset]
        request = completion_request(model, conv.prompt, preset, conv.human_name, conv.ai_name, turns)
    # The conversation keeps its upstream key while it is usable (the upstream's prompt cache).
    return UpstreamRequest(request.endpoint, request.body, affinity=conv.id)


def examples_turns(examples: Sequence[str], question: str) -> list[Turn]:
    """quickAnswer's few-shot ``examples`` (human, AI, human, …) followed by the question."""
    roles: tuple[Role, Role] = ("user", "assistant")
    turns: list[Turn] = [(roles[index % 2], text) for index, text in enumerate(examples)]
    turns.append(("user", question))
    return turns


def summary_request(article: str, models: ModelsConfig) -> UpstreamRequest:
    body: dict[str, Any] = {
        "model": Kind.GPT3.model(models),
        "prompt": f"{article}\nTl;dr\n",
        **SUMMARY.params(),
    }
    return UpstreamRequest(endpoint="completion", body=body)
