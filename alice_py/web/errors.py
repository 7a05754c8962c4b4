"""From a raised error to a response, in the format of the dialect the path belongs to.

Domain code raises ``AliceError``; the error middleware (``web.middlewares``) finds the
dialect of the path (``web.dialects``, longest prefix) and lets its formatter build the
response. Paths no dialect claimed get Alice's plain text. A formatter picks the status too
(Alice's honours ``--compat-status``; zhuweiyou's answers 500 for everything), and
writes ``client_message(error)``: an error whose details stay in the log (an upstream
5xx, a connection failure, a bug) names the request id, so a user can quote it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from aiohttp import web

from alice_py import appkeys
from alice_py.errors import AliceError, RateLimited
from alice_py.request_ids import current_id
from alice_py.upstream.errors import KeysCoolingError

ErrorFormatter = Callable[[web.Request, AliceError], web.Response]
"""Builds the response for ``error`` raised while handling ``request``."""

INTERNAL_ERROR = "Internal server error, please try again later"
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


class InternalError(AliceError):
    """A bug: the traceback is in the log, under the request id the client is told."""

    details_in_log = True

    def __init__(self) -> None:
        super().__init__(INTERNAL_ERROR)




def client_message(error: AliceError) -> str:
    """The message for the client; ``(request id …)`` added when the log has the details."""
    if error.details_in_log:
        request_id = current_id()
        if request_id is not None:
            return f"{error.message} (request id {request_id})"
    return error.message


def error_status(request: web.Request, error: AliceError) -> int:
    """The correct status, or the Go original's with ``--compat-status``."""
    return error.compat_status if request.app[appkeys.CONFIG].server.compat_status else error.status


def safe_text(text: str) -> bytes:
    """UTF-8 bytes of ``text``; lone surrogates (aiohttp's stand-ins for header bytes that
    were not UTF-8, echoed back in a message) become U+FFFD instead of failing."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8")


def plain_text_error(request: web.Request, error: AliceError) -> web.Response:
    """Alice's error: the message as the whole plain-text body (``e.response.data`` in a frontend).

    ``nosniff``: messages echo the client's input, which a browser must never take for HTML."""
    return web.Response(
        status=error_status(request, error),
        body=safe_text(client_message(error)),
        content_type="text/plain",
        charset="utf-8",
        headers=NOSNIFF,
    )


def retry_after_seconds(seconds: float) -> str:
    """``Retry-After`` wants whole seconds; never 0, which would invite an immediate retry."""
    return str(max(1, math.ceil(seconds)))


def render_error(request: web.Request, error: AliceError) -> web.Response:
    """The dialect's response for ``error``, with ``Retry-After`` when it is a rate limit."""
    response = request.app[appkeys.DIALECTS].for_path(request.path).errors(request, error)
    if isinstance(error, RateLimited | KeysCoolingError) and error.retry_after is not None:
        response.headers["Retry-After"] = retry_after_seconds(error.retry_after)
    return response
