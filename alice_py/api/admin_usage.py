"""The admin usage API: ``GET /admin/usage``, the tokens used per upstream key and per client.

``{"upstream_keys": [{"name": "sk-…abcd", "prompt_tokens", "completion_tokens",
"total_tokens", "answers"}], "clients": [...]}``, most tokens first (``alice_py.usage``):
keys masked, clients named by the digest of their key (``key:…``) or their address.
Auth as ``/admin/keys`` (its line in ``api.table``). The admin page shows the same tables.
"""

from __future__ import annotations

from aiohttp import web

from alice_py import appkeys
from alice_py.api.admin_keys import FailureLimiter
from alice_py.api.dialects import json_response

PATH = "/admin/usage"


async def usage(request: web.Request) -> web.Response:
    return json_response(request.app[appkeys.USAGE].snapshot())


def add_routes(app: web.Application) -> None:
    if appkeys.ADMIN_FAILURES not in app:
        app[appkeys.ADMIN_FAILURES] = FailureLimiter()
    app.router.add_get(PATH, usage, allow_head=False)
