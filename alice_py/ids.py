"""Identifiers.

Conversation ids keep Alice's format: 8 characters from ``[A-Za-z0-9]`` (62^8,
about 2 * 10^14 values). Uniqueness among live conversations and shares is the
service's job (it retries on a clash); this module only draws them.

Message ids are 22 characters from the same alphabet (131 random bits, more than a
uuid4's 122): opaque strings, as node-chatgpt-api clients expect.

Both come from ``os.urandom`` (cryptographically random, so ids cannot be guessed):
each random byte below 248 = 4 * 62 picks one character (``byte % 62``, so every
character is equally likely) and the others are dropped. Two ids per answer are
drawn on the hot path; this costs about 1 µs where shortuuid's took 6 to 10.
"""

from __future__ import annotations

import os
import string

CONVERSATION_ID_LENGTH = 8
MESSAGE_ID_LENGTH = 22
CONVERSATION_ID_ALPHABET = string.ascii_letters + string.digits

_KEPT = 4 * len(CONVERSATION_ID_ALPHABET)
_TO_CHARACTER = CONVERSATION_ID_ALPHABET.encode("ascii") * 4
_TABLE = _TO_CHARACTER + bytes(256 - _KEPT)
_DROPPED = bytes(range(_KEPT, 256))


def _random_text(length: int) -> str:
    while True:
        # A few spare bytes: fewer than ``length`` kept happens about once in 50,000 draws.
        kept = os.urandom(length + 6).translate(_TABLE, _DROPPED)
        if len(kept) >= length:
            return kept[:length].decode("ascii")


def new_id() -> str:
    """A random conversation id."""
    return _random_text(CONVERSATION_ID_LENGTH)


def new_message_id() -> str:
    return _random_text(MESSAGE_ID_LENGTH)


def is_conversation_id(value: str) -> bool:
    return len(value) == CONVERSATION_ID_LENGTH and all(c in CONVERSATION_ID_ALPHABET for c in value)
