"""How much a Responses API conversation may hold: ``[conversations] max_bytes`` (0 = no limit).

A ``/v1/conversations`` conversation's items and a chain of stored responses
(``previous_response_id``: each stored response keeps the whole history it was made from)
are conversations the service keeps, like an Alice conversation: without this bound one
client key could grow one of them, or the database, by ``[server] max_body`` per request
with no model call at all. Items count as they are stored, as JSON, so every kind of item
counts (messages, function calls and their outputs). The checks run before anything is
written and before any model call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from alice_py.errors import ConversationTooLarge


def items_bytes(items: Iterable[dict[str, Any]]) -> int:
    return sum(len(orjson.dumps(item)) for item in items)


def check_items(max_bytes: int, kept: Iterable[dict[str, Any]], added: Iterable[dict[str, Any]]) -> None:
    """``ConversationTooLarge`` when ``added`` would take a conversation holding ``kept`` past
    ``max_bytes``."""
    if not max_bytes:
        return
    size = items_bytes(kept) + items_bytes(added)
    if size > max_bytes:
        raise ConversationTooLarge(
            f"This conversation would hold {size} bytes of items, more than the {max_bytes} allowed "
            "([conversations] max_bytes; every item counts, as stored): start a new conversation"
        )
