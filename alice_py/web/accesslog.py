"""The access log: one line per request, off by default (``[server] access_log``).

aiohttp's own access logger formats a dozen fields per request through a format
string and ``strftime``; on a relay that answers in a fraction of a millisecond that
was a quarter of the service's CPU (docs/performance.md). Off, no logger object is
made at all (``runner_kwargs``); on, this one writes the fields that matter with one
``%``-format, and only when ``aiohttp.access`` logs at INFO.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from alice_py import appkeys
from alice_py.request_ids import current
from alice_py.upstream.keypool import NO_KEY_LABEL, mask_key

ACCESS_LOGGER = "aiohttp.access"


class AccessLogger(AbstractAccessLogger):
    """``127.0.0.1 "POST /chatgpt/chat" 200 125 1.2ms`` (client, request line, status, body bytes,
    time), and for a request that called a model: which upstream and key (masked) served it and
    the tokens the upstream counted (``usage``; ``-`` when it sent none, or the call failed):
    ``… 1.2ms upstream=openai key=sk-…abcd tokens=42``. aiohttp writes the line in the request's
    own task, so the request's ``RequestInfo`` is still current.

    The client is the peer, or behind a proxy of ``[server] trusted_proxies`` the address it
    forwards for (``web.proxies``): behind nginx every line would otherwise name nginx."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        remote = request.remote
        if isinstance(request, web.Request):
            proxies = request.app.get(appkeys.TRUSTED_PROXIES)
            if proxies is not None and proxies.trusts(remote):
                remote = proxies.client_address(request)
        line = '%s "%s %s" %d %d %.1fms'
        args: list[object] = [
            remote,
            request.method,
            request.path_qs,
            response.status,
            response.body_length,
            time * 1000,
        ]
        info = current()
        if info is not None and info.upstream is not None:
            line += " upstream=%s key=%s tokens=%s"
            key = info.key
            args += [info.upstream, mask_key(key) if key else NO_KEY_LABEL, info.tokens or "-"]
        self.logger.info(line, *args)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def runner_kwargs(enabled: bool) -> dict[str, Any]:
    """What ``web.AppRunner`` needs for the access log, on or off."""
    if not enabled:
        return {"access_log": None}
    return {"access_log": logging.getLogger(ACCESS_LOGGER), "access_log_class": AccessLogger}
