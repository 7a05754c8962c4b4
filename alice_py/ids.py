"""Identifiers.

Conversation ids keep Alice's format: 8 characters from ``[A-Za-z0-9]`` (62^8,
about 2 * 10^14 values). Uniqueness among live conversations and shares is the
service's job (it retries on a clash); this module only draws them.

Message ids are 22-character shortuuids: a random uuid4 written in base 57.
"""

from __future__ import annotations

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
_message_ids = shortuuid.ShortUUID()


def new_message_id() -> str:
    # The length given: shortuuid would work it out again (a logarithm) for every id.
    return _message_ids.uuid(pad_length=MESSAGE_ID_LENGTH)


def is_conversation_id(value: str) -> bool:
    return len(value) == CONVERSATION_ID_LENGTH and all(c in CONVERSATION_ID_ALPHABET for c in value)
