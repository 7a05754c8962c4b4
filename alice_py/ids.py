"""Identifiers.

Conversation ids keep Alice's format: 8 characters from ``[A-Za-z0-9]`` (62^8,
about 2 * 10^14 values). Uniqueness among live conversations and shares is the
service's job (it retries on a clash); this module only draws them.

Message ids are 22-character shortuuids: 128 random bits written in base 57, as
``shortuuid.uuid()`` writes them, drawn about three times faster (two per turn).
"""

from __future__ import annotations

import os
import string
from functools import cache

import shortuuid

CONVERSATION_ID_LENGTH = 8
CONVERSATION_ID_ALPHABET = string.ascii_letters + string.digits


@cache
def _conversation_ids() -> shortuuid.ShortUUID:
    return shortuuid.ShortUUID(alphabet=CONVERSATION_ID_ALPHABET)


def new_id() -> str:
    """A random conversation id (cryptographically random, so ids cannot be guessed)."""
    return _conversation_ids().random(length=CONVERSATION_ID_LENGTH)


MESSAGE_ID_LENGTH = 22
_BASE57 = shortuuid.ShortUUID().get_alphabet()
_DIGIT_PAIRS = tuple(high + low for high in _BASE57 for low in _BASE57)
"""Two base-57 digits per entry: 11 divisions per id instead of shortuuid's 22 (and no
``uuid.UUID`` object in between)."""


def new_message_id() -> str:
    """Like ``shortuuid.uuid()``: the same alphabet, length and randomness (``os.urandom``)."""
    number = int.from_bytes(os.urandom(16))
    pairs = []
    for _ in range(MESSAGE_ID_LENGTH // 2):
        number, pair = divmod(number, len(_DIGIT_PAIRS))
        pairs.append(_DIGIT_PAIRS[pair])
    pairs.reverse()  # most significant first, as shortuuid writes them
    return "".join(pairs)


def is_conversation_id(value: str) -> bool:
    return len(value) == CONVERSATION_ID_LENGTH and all(c in CONVERSATION_ID_ALPHABET for c in value)
