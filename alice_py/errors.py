"""The domain error hierarchy.

Domain code raises these; one middleware per dialect maps them to a status and
a body. ``message`` is always safe to show a user: it never holds a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar


class AliceError(Exception):
    """Base of every error a user may see. ``status`` is the correct HTTP status;
    ``compat_status`` is what the Go original answered (``--compat-status``).
    ``details_in_log``: the message is short and the log has the rest, so the client
    is also told the request id to quote (``web.errors.client_message``)."""

    status: int = 500
    compat_status: int = 500
    details_in_log: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(AliceError):
    status = 400


class AuthFailed(AliceError):
    status = 401
    compat_status = 505

    def __init__(self, message: str = "Auth failed") -> None:
        super().__init__(message)


class NotFound(AliceError):
    status = 404


class ConversationNotFound(NotFound):
    def __init__(self, conv_id: str) -> None:
        super().__init__(f"failed to find conversation with provided id: {conv_id}")
        self.conv_id = conv_id


class ShareNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Failed to find shared conversation with provided id")


class ModelNotFound(NotFound):
    """A model the client named that does not exist here or is not in ``[models] allowed``."""

    def __init__(self, model: str) -> None:
        super().__init__(f"The model '{model}' does not exist or you do not have access to it.")
        self.model = model


class ConversationBusy(AliceError):
    """The conversation is answering another request."""

    status = 409

    def __init__(self, message: str = "AI is thinking") -> None:
        super().__init__(message)


class RateLimited(AliceError):
    status = 429
    compat_status = 502

    def __init__(self, retry_after: float, message: str = "Server busy") -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(AliceError):
    status = 413
    compat_status = 413


class ConversationTooLarge(PayloadTooLarge):
    """A conversation would hold more than ``[conversations] max_bytes`` of text."""


class ConfigError(Exception):
    """A configuration mistake: the CLI prints the message and exits with status 2."""


class StorageUnavailable(AliceError):
    """The database (or a shared store) did not answer: try again later."""

    status = 503
    compat_status = 500


E = TypeVar("E", bound=BaseException)
V = TypeVar("V")


def by_class(table: Mapping[type[E], V], error: E) -> V:
    """The entry of the nearest class of ``error`` along its MRO (a table's root class, such as
    ``AliceError``, catches the rest)."""
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    raise LookupError(f"no entry for {type(error).__name__}")
