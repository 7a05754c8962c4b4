"""The context windows the upstream reports in ``GET /v1/models``, read once at start.

vLLM gives each model ``max_model_len``; LM Studio and OpenRouter ``context_length``;
a llama.cpp server that reports its running context gives ``meta.n_ctx``. (llama.cpp's
``meta.n_ctx_train`` is what the model was trained with, not the server's window, so it is
not taken: a 512-token server would be taken for a 32k one.) OpenAI reports none: there
``[context] windows`` and ``default_window`` decide.

The list is asked for once, and only when a conversation first outgrows ``default_window``
with a model ``[context] windows`` does not name; an upstream that does not answer leaves
the configured windows in force (one log line says so).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from alice_py.upstream.errors import UpstreamError
from alice_py.upstream.router import UpstreamRouter

log = logging.getLogger(__name__)

_FIELDS = ("max_model_len", "context_length", "context_window")


def _window(entry: Mapping[str, Any]) -> int | None:
    meta = entry.get("meta")
    candidates = [entry.get(name) for name in _FIELDS]
    if isinstance(meta, Mapping):
        candidates.append(meta.get("n_ctx"))
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def parse_windows(listing: Any) -> dict[str, int]:
    """Model id → window, for the models of a ``/v1/models`` answer that report one."""
    data = listing.get("data") if isinstance(listing, Mapping) else None
    windows: dict[str, int] = {}
    for entry in data if isinstance(data, list) else ():
        if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
            window = _window(entry)
            if window is not None:
                windows[entry["id"]] = window
    return windows


class ReportedWindows:
    """The upstream's windows, asked for the first time a conversation outgrows the configured
    default (``ContextPolicy``): most deployments never need the list, and no request is sent
    at start. A failed read is tried again after ``RETRY_AFTER`` seconds."""

    RETRY_AFTER = 300.0

    def __init__(self, router: UpstreamRouter, clock: Callable[[], float] = time.monotonic) -> None:
        self._router = router
        self._clock = clock
        self._windows: dict[str, int] | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()

    def known(self, model: str) -> int | None:
        """The window read so far for ``model`` (no request)."""
        return None if self._windows is None else self._windows.get(model)

    async def get(self, model: str) -> int | None:
        """The upstream's window for ``model``, reading the list if it was not read yet."""
        async with self._lock:
            if self._windows is None and (
                self._failed_at is None or self._clock() - self._failed_at >= self.RETRY_AFTER
            ):
                await self._read()
        return self.known(model)

    async def _read(self) -> None:
        """Every upstream's list (``[[upstreams]]``); the first to report a model names its window."""
        windows: dict[str, int] = {}
        failed: list[str] = []
        for target in self._router.targets:
            try:
                key = target.pool.acquire()
                reported = parse_windows(await target.client.list_models(key))
            except (UpstreamError, OSError, ValueError) as exc:
                failed.append(f"{target.name}: {exc}")
                continue
            windows = {**reported, **windows}
        if failed and not windows:
            self._failed_at = self._clock()
            log.info(
                "the upstreams' model lists could not be read (%s): configured windows apply",
                "; ".join(failed),
            )
            return
        self._windows = windows
