"""The admin share API: list and revoke shares.

- ``GET /admin/shares?limit=100&offset=0``: the shares, most recently stored first, without
  their text (the share page has it): id, link, conversation id, message count, times.
- ``DELETE /admin/shares/{id}``: revoke one; its link answers 404 from then on. The live
  conversation it was stored from is not touched.

Auth as ``/admin/keys`` (``Authorization: <[admin] password>``, off without a password, wrong
passwords counted in the same ``FailureLimiter``). The admin page lists and revokes them too.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from alice_py import appkeys
from alice_py.api.admin_keys import FailureLimiter
from alice_py.api.dialects import json_response
from alice_py.db.shares import ShareInfo
from alice_py.errors import BadRequest, NotFound

log = logging.getLogger(__name__)

PATH = "/admin/shares"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SHARE_PAGE = "/chatgpt/share/"


def share_view(share: ShareInfo) -> dict[str, Any]:
    return {
        "id": share.id,
        "url": SHARE_PAGE + share.id,
        # A share of the original's kind has its conversation's id.
        "conversation_id": share.conversation_id or share.id,
        "separate_id": share.conversation_id is not None,
        "messages": share.messages,
        "created_at": share.created_at.isoformat(timespec="seconds"),
        "updated_at": share.updated_at.isoformat(timespec="seconds"),
    }


def _int_param(request: web.Request, name: str, default: int, highest: int) -> int:
    raw = request.query.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number from 0 to {highest}, got {raw!r}") from None
    if not 0 <= value <= highest:
        raise BadRequest(f"{name} must be a whole number from 0 to {highest}, got {value}")
    return value


async def list_shares(request: web.Request) -> web.Response:
    limit = _int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 2**62)
    shares = request.app[appkeys.SHARES]
    found = await shares.recent(limit, offset)
    return json_response(
        {
            "shares": [share_view(share) for share in found],
            "count": await shares.count(),
            "limit": limit,
            "offset": offset,
        }
    )


async def revoke_share(request: web.Request) -> web.Response:
    share_id = request.match_info["id"]
    if not await request.app[appkeys.SHARES].delete(share_id):
        raise NotFound(f"No share with id {share_id!r}")
    log.info("admin revoked share %s", share_id)
    return json_response({"revoked": share_id})


def add_routes(app: web.Application) -> None:
    if appkeys.ADMIN_FAILURES not in app:
        app[appkeys.ADMIN_FAILURES] = FailureLimiter()
    app.router.add_get(PATH, list_shares, allow_head=False)
    app.router.add_delete(PATH + "/{id}", revoke_share)
