"""How much text a conversation may hold: ``[conversations] max_bytes`` (0 = no limit).

What counts is what the service keeps: the prompt and every message on every branch
(regenerated answers included), in UTF-8 bytes. The checks run before any model call; an
answer is never cut, so a conversation may end one answer past the limit, and its next
question is then refused.
"""

from __future__ import annotations

from alice_py.engine.tree import Conversation
from alice_py.errors import ConversationTooLarge


def text_bytes(text: str) -> int:
    """UTF-8 size; ASCII text (the usual case) without encoding it."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def conversation_bytes(conv: Conversation) -> int:
    return text_bytes(conv.prompt) + sum(text_bytes(message.content) for message in conv.messages.values())


def check_prompt(max_bytes: int, prompt: str) -> None:
    """``ConversationTooLarge`` when a new conversation's prompt alone is over the limit."""
    if max_bytes and (size := text_bytes(prompt)) > max_bytes:
        raise ConversationTooLarge(
            f"The prompt is {size} bytes: a conversation holds at most {max_bytes} bytes of text"
        )


def check_question(max_bytes: int, conv: Conversation, question: str) -> None:
    """``ConversationTooLarge`` when ``question`` would take ``conv`` over the limit."""
    if not max_bytes:
        return
    size = conversation_bytes(conv) + text_bytes(question)
    if size > max_bytes:
        raise ConversationTooLarge(
            f"This conversation would hold {size} bytes of text, more than the {max_bytes} "
            "allowed (its prompt and every message count): start a new conversation"
        )
