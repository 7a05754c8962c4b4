"""Conversation kinds, request presets, default prompts and names (spec: alice-api.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from alice_py.config import ModelsConfig


class Kind(Enum):
    GPT3 = "gpt3"
    """A text completion model fed one transcript prompt."""
    TURBO = "turbo"
    GPT4 = "gpt4"

    @property
    def is_chat(self) -> bool:
        return self is not Kind.GPT3

    def model(self, models: ModelsConfig) -> str:
        name: str = getattr(models, self.value)
        return name

    @classmethod
    def for_conv_type(cls, conv_type: str | None) -> Kind:
        """quickAnswer's ``convType``: ``gpt3``, ``gpt4``, anything else is turbo."""
        if conv_type == "gpt3":
            return cls.GPT3
        if conv_type == "gpt4":
            return cls.GPT4
        return cls.TURBO


DEFAULT_COMPLETION_PROMPT = (
    "The following is a conversation with an AI assistant. "
    "The assistant is helpful, creative, clever, and very friendly.\n"
)
DEFAULT_CHAT_PROMPT = (
    "You are ChatGPT, a large language model trained by OpenAI. Answer as concisely as possible."
)
"""createGPT4's default. createTurbo's default is the empty prompt (no system message), as in Go."""

FRIEND_CHAT = "FriendChat"
SETTINGS = ("", FRIEND_CHAT)
"""The values of create's ``settings`` header."""

COMPLETION_NAMES = ("Human", "AI")
FRIEND_NAMES = ("You", "Friend")
CHAT_NAMES = ("user", "assistant")
"""What ``context`` shows for chat kinds; also the default labels of chat conversations."""


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    max_tokens: int
    temperature: float
    top_p: float
    frequency_penalty: float
    presence_penalty: float
    transcript: bool
    """A conversation transcript: it needs stop words so the model does not write the human's turn."""

    def params(self) -> dict[str, float | int]:
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "frequency_penalty": self.frequency_penalty,
            "presence_penalty": self.presence_penalty,
        }

    def stop(self, human_name: str, ai_name: str) -> list[str] | None:
        """The stop words for a transcript between ``human_name`` and ``ai_name``.

        friend and roleplay keep the original's ``You:`` / ``<human_name>:``. The
        original sent none for default and quick, so the model went on to write the
        human's next line itself; here those stop at the start of either speaker's
        next line. summary is not a transcript and has none.
        """
        if self.name == "friend":
            return ["You:"]
        if self.name == "roleplay":
            return [f"{human_name}:"]
        if self.transcript:
            return [f"\n{human_name}:", f"\n{ai_name}:"]
        return None


DEFAULT = Preset("default", 500, 0.9, 1, 0, 0.6, transcript=True)
FRIEND = Preset("friend", 512, 0.5, 1, 0.5, 0, transcript=True)
ROLEPLAY = Preset("roleplay", 512, 0.5, 1, 0.5, 0, transcript=True)
QUICK = Preset("quick", 3500, 0.9, 1, 0, 0.6, transcript=True)
SUMMARY = Preset("summary", 2048, 0.7, 1, 0, 1, transcript=False)

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {p.name: p for p in (DEFAULT, FRIEND, ROLEPLAY, QUICK, SUMMARY)}
)
