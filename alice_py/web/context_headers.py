"""The ``X-Context-*`` headers of an answer whose history was fitted to the model's window.

``X-Context-Tokens``: our count of the request sent for this answer; ``X-Context-Window``:
the model's window; ``X-Context-Dropped``: the turns left out (docs/context.md). One-off
answers (no stored history) carry none.
"""

from __future__ import annotations

from collections.abc import Mapping

from alice_py.engine.context import TurnContext

NAMES = ("X-Context-Tokens", "X-Context-Window", "X-Context-Dropped")
NONE: Mapping[str, str] = {}


def context_headers(answer: object) -> Mapping[str, str]:
    """The headers for ``answer`` (an ``Answer``, or a dialect's wrapper with a ``context``)."""
    context = getattr(answer, "context", None)
    return context.headers() if isinstance(context, TurnContext) else NONE
