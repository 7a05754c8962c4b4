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

ACCESS_LOGGER = "aiohttp.access"


class AccessLogger(AbstractAccessLogger):
    """``127.0.0.1 "POST /chatgpt/chat" 200 125 1.2ms`` (client, request line, status, body bytes, time).

    The client is the peer, or behind a proxy of ``[server] trusted_proxies`` the address it
    forwards for (``web.proxies``): behind nginx every line would otherwise name nginx."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        remote = request.remote
        if isinstance(request, web.Request):
            proxies = request.app.get(appkeys.TRUSTED_PROXIES)
            if proxies is not None and proxies.trusts(remote):
                remote = proxies.client_address(request)
        self.logger.info(
            '%s "%s %s" %d %d %.1fms',
            remote,
            request.method,
            request.path_qs,
            response.status,
            response.body_length,
            time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def runner_kwargs(enabled: bool) -> dict[str, Any]:
    """What ``web.AppRunner`` needs for the access log, on or off."""
    if not enabled:
        return {"access_log": None}
    return {"access_log": logging.getLogger(ACCESS_LOGGER), "access_log_class": AccessLogger}
