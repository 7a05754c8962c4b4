"""The dialects, declared in one table: each path prefix with its auth guard, its error
format and its CORS (``api.table.declared_dialects`` fills it, once, in ``create_app``).

One lookup answers every question the pipeline asks about a request: the dialect of the
longest matching prefix (``/v1`` covers ``/v1/...``). Paths no dialect claims are Alice's
pages: no guard, plain-text errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from alice_py.web.auth import Guard
from alice_py.web.errors import ErrorFormatter


@dataclass(frozen=True, slots=True)
class Dialect:
    prefix: str
    """A path prefix such as ``/v1`` (it matches ``/v1`` and ``/v1/...``)."""
    errors: ErrorFormatter
    guard: Guard | None = None
    """Checks every request under ``prefix``; None: the dialect needs no credentials."""
    public: frozenset[str] = field(default_factory=frozenset)
    """Route paths under ``prefix`` that need none (``/chatgpt/share/{id}``)."""
    credentialed_cors: bool = False
    """Listed origins get their echo with credentials even when ``*`` is configured (``/chat``)."""


class DialectTable:
    def __init__(self, dialects: Iterable[Dialect], default_errors: ErrorFormatter) -> None:
        self._by_prefix = {dialect.prefix.rstrip("/"): dialect for dialect in dialects}
        self._default = Dialect("", default_errors)
        # The guard of each route, found once: every request asks, and routes don't change.
        self._guards: dict[AbstractRoute, Guard | None] = {}

    def replace(self, dialect: Dialect) -> None:
        """Put ``dialect`` in place of the one with its prefix (a test's clocked guard)."""
        self._by_prefix[dialect.prefix.rstrip("/")] = dialect
        self._guards.clear()

    def for_path(self, path: str) -> Dialect:
        best = ""
        for prefix in self._by_prefix:
            if len(prefix) > len(best) and (path == prefix or path.startswith(prefix + "/")):
                best = prefix
        return self._by_prefix[best] if best else self._default

    def credentialed_paths(self) -> frozenset[str]:
        return frozenset(prefix for prefix, dialect in self._by_prefix.items() if dialect.credentialed_cors)

    def guard_for(self, request: web.Request) -> Guard | None:
        if request.method == "OPTIONS":
            return None
        route = request.match_info.route
        try:
            return self._guards[route]
        except KeyError:
            pass
        dialect = self.for_path(request.path)
        canonical = route.resource.canonical if route.resource is not None else None
        guard = None if canonical in dialect.public else dialect.guard
        if canonical == request.path:
            self._guards[route] = guard  # a plain path; a dynamic one may hold any prefix
        return guard
