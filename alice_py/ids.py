"""Identifiers.

Conversation ids keep Alice's format: 8 characters from ``[A-Za-z0-9]`` (62^8,
about 2 * 10^14 values). Uniqueness among live conversations and shares is the
service's job (it retries on a clash); this module only draws them.

Message ids are 22-character shortuuids: 128 random bits written in base 57, as
``shortuuid.uuid()`` writes them.

Both are drawn from ``os.urandom`` (unguessable), but read 4 KiB at a time: on the
machines measured a system call costs more than all the rest of an id (``os.urandom``
per id was 6 % of W3's CPU, ``secrets.choice`` per character 1 %; docs/performance.md).
"""

from __future__ import annotations

import os
import string

import shortuuid

CONVERSATION_ID_LENGTH = 8
CONVERSATION_ID_ALPHABET = string.ascii_letters + string.digits
MESSAGE_ID_LENGTH = 22

_CONVERSATION_IDS = len(CONVERSATION_ID_ALPHABET) ** CONVERSATION_ID_LENGTH
_UNBIASED_BELOW = 2**64 - 2**64 % _CONVERSATION_IDS
"""8 random bytes below this, taken modulo 62^8, give every id the same chance."""
_BASE57 = shortuuid.ShortUUID().get_alphabet()
_DIGIT_PAIRS = tuple(high + low for high in _BASE57 for low in _BASE57)
"""Two base-57 digits per entry: 11 divisions per id instead of shortuuid's 22 (and no
``uuid.UUID`` object in between)."""


class RandomBytes:
    """``os.urandom`` read in blocks. A forked process must not reuse its parent's block:
    ``os.register_at_fork`` makes the child forget it (``--workers`` forks)."""

    BLOCK = 4096

    def __init__(self) -> None:
        self._block = b""
        self._used = 0
        os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        self._block, self._used = b"", 0

    def number(self, size: int) -> int:
        """A random integer of ``size`` bytes."""
        if self._used + size > len(self._block):
            self._block, self._used = os.urandom(self.BLOCK), 0
        start = self._used
        self._used += size
        return int.from_bytes(self._block[start : self._used])


_random = RandomBytes()


def new_id() -> str:
    """A random conversation id (cryptographically random, so ids cannot be guessed)."""
    number = _random.number(8)
    while number >= _UNBIASED_BELOW:
        number = _random.number(8)
    number %= _CONVERSATION_IDS
    chars = []
    for _ in range(CONVERSATION_ID_LENGTH):
        number, digit = divmod(number, len(CONVERSATION_ID_ALPHABET))
        chars.append(CONVERSATION_ID_ALPHABET[digit])
    return "".join(chars)


def new_message_id() -> str:
    """Like ``shortuuid.uuid()``: the same alphabet, length and (``os.urandom``) randomness."""
    number = _random.number(16)
    pairs = []
    for _ in range(MESSAGE_ID_LENGTH // 2):
        number, pair = divmod(number, len(_DIGIT_PAIRS))
        pairs.append(_DIGIT_PAIRS[pair])
    pairs.reverse()  # most significant first, as shortuuid writes them
    return "".join(pairs)


def is_conversation_id(value: str) -> bool:
    return len(value) == CONVERSATION_ID_LENGTH and all(c in CONVERSATION_ID_ALPHABET for c in value)
