"""Item 5 on the Responses API: a ``/v1/conversations`` conversation grown past ``--max-bytes``
by adding items, which calls no model (so only the size limit stops it)."""

from __future__ import annotations

from abuse_probe import Probe


def _items(size: int) -> dict[str, object]:
    return {"items": [{"type": "message", "role": "user", "content": "v" * size}]}


async def v1_conversation_held(probe: Probe, part: int, max_bytes: int) -> tuple[bool, str]:
    """(held, what was seen); an instance without ``/v1/conversations`` holds, and says so.
    With ``--client-key2``, as that client: item 1 may have used up the first one's per-client
    allowance (a new conversation counts against it)."""
    auth = probe.bearer(probe.opts.client_key2 or None)
    created = await probe.request("POST", "/v1/conversations", headers=auth, json=_items(part))
    if created.status in (404, 405, 429):  # an older instance, or the per-client limit (item 1's)
        return True, f"/v1/conversations not checked (it answered {created.status})"
    body = created.json()
    if created.status != 200 or not isinstance(body, dict) or "id" not in body:
        return False, f"POST /v1/conversations with {part} bytes of items answered {created.status}"
    path = f"/v1/conversations/{body['id']}"
    try:
        added = await probe.request("POST", path + "/items", headers=auth, json=_items(part))
    finally:
        await probe.request("DELETE", path, headers=auth)
    if added.status != 413:
        return False, (
            f"adding {part} bytes of items to a /v1 conversation of {part} (over {max_bytes}) "
            f"answered {added.status}, not 413"
        )
    return True, "/v1/conversations items past it: 413"
