"""Request ids: a short id for every request, for its log lines and its ``X-Request-Id`` header.

An id is a per-process random prefix and a counter (``3f9a1c-2b``): unique enough to find
one request in one process's log, and it costs one ``next()`` and one format per request,
where a ``uuid4`` would cost a system call. The prefix tells processes apart (``--workers``,
restarts).

The request being handled is in a ``ContextVar``: aiohttp runs each request in its own task,
with a copy of the context, so what the error middleware sets is seen by everything that
request runs (the router's log lines, the stream writers) and by no other request. Code
that runs outside a request sees ``None``.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar

HEADER = "X-Request-Id"
UPSTREAM_HEADER = "X-Upstream"
"""The name (never the key) of the upstream that answered."""


class RequestInfo:
    """The request being handled, as its failure log lines name it."""

    __slots__ = (
        "_client", "answered", "client_gone", "id", "identify", "key", "method", "path", "started", "tokens",
        "upstream",
    )

    def __init__(self, request_id: str, method: str, path: str) -> None:
        self.id = request_id
        self.method = method
        self.path = path
        self.started = time.monotonic()
        self.answered: float | None = None
        """When a stream's headers were made (``web.sse``): the request is timed to its start."""
        self.key: str | None = None
        """The upstream key of the latest model call, set by the router (never shown unmasked)."""
        self.upstream: str | None = None
        """The name of the upstream of the latest model call (``X-Upstream``), set by the router."""
        self._client: str | None = None
        self.identify: Callable[[], str] | None = None
        """Works out ``client`` when it is first asked for (set at the model call's admission)."""
        self.tokens: int | None = None
        """Tokens the upstream counted for the call that served (its ``usage``), set by the router."""
        self.client_gone = False
        """Set once the client's leaving is logged, so that it is logged once."""

    @property
    def client(self) -> str | None:
        """Who asked, as the per-client rate limit counts clients (known at the model call's
        admission: ``web.ratelimit``), for the usage totals (``alice_py.usage``). Worked out on
        first use: most requests (one-off answers without a per-client limit) never ask."""
        if self._client is None and self.identify is not None:
            self._client = self.identify()
        return self._client

    @client.setter
    def client(self, identity: str) -> None:
        self._client = identity

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"

    def elapsed(self) -> float:
        return time.monotonic() - self.started


# A ContextVar is made once, at import: its value is per request (per task), not shared state.
_CURRENT: ContextVar[RequestInfo | None] = ContextVar("alice_py_request", default=None)


class RequestIds:
    """Makes the ids of one process (one app): ``<prefix>-<counter in hex>``."""

    __slots__ = ("_count", "prefix")

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or secrets.token_hex(3)
        self._count = itertools.count(1)

    def begin(self, method: str, path: str) -> RequestInfo:
        """A fresh id for the request now being handled, made current for its task."""
        info = RequestInfo(f"{self.prefix}-{next(self._count):x}", method, path)
        _CURRENT.set(info)
        return info


current: Callable[[], RequestInfo | None] = _CURRENT.get
"""The request being handled, or None outside a request. (The ContextVar's own ``get``: a
Python function around it would be one more frame, several times per request.)"""


def current_id() -> str | None:
    info = _CURRENT.get()
    return info.id if info is not None else None
