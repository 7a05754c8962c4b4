"""How a dialect may change one turn without changing its conversation.

node-chatgpt-api builds each request from the settings of that request alone
(its per-message ``clientOptions``): a system prompt or model options sent with
one message apply to that message's request, and the conversation stays as it
was. It also answers a ``parentMessageId`` it does not know from an empty
history rather than refusing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

STRUCTURE_FIELDS = frozenset({"messages", "prompt", "stream", "stream_options"})
"""Fields of the upstream body the engine owns: ``params`` never replace them."""


@dataclass(frozen=True, slots=True)
class TurnOptions:
    prompt: str | None = None
    """The system prompt of this turn's request (the conversation keeps its own)."""
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Fields added to (or replacing, ``model`` included) this turn's upstream request body,
    except ``STRUCTURE_FIELDS``."""
    stream: bool | None = None
    """Stream from the upstream or not; ``None``: as the conversation was created."""
    keep_response: bool = False
    """A non-streamed answer keeps the upstream's whole JSON response (``Answer.response``)."""
    unknown_parent_is_root: bool = False
    """A ``parent_id`` the conversation does not have starts a new root (an empty history)
    instead of raising ``NotFound``."""


DEFAULT_TURN = TurnOptions()


def with_params(body: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with ``params`` laid over it, the engine's structure fields kept as they were."""
    merged = dict(body)
    merged.update((name, value) for name, value in params.items() if name not in STRUCTURE_FIELDS)
    return merged
