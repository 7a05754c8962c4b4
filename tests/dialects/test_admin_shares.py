"""The admin share API: list and revoke shares, with the admin password of ``/admin/keys``."""

from __future__ import annotations

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.dialects.conftest import ADMIN_PASSWORD, MakeClient

Client = TestClient[web.Request, web.Application]
ADMIN = {"Authorization": ADMIN_PASSWORD}


async def shared_conversation(client: Client, question: str = "hi") -> tuple[str, str]:
    """(conversation id, share id) of a conversation with one turn, stored."""
    conv_id = await (await client.post("/chatgpt/createTurbo")).text()
    await (
        await client.post("/chatgpt/chat", data=question.encode(), headers={"conversation": conv_id})
    ).read()
    stored = await client.post("/chatgpt/store", headers={"conversation": conv_id})
    assert stored.status == 200
    return conv_id, stored.headers["Share-Id"]


async def test_off_without_a_password_and_refused_without_it(make_client: MakeClient) -> None:
    off = await make_client()
    for method, path in (("GET", "/admin/shares"), ("DELETE", "/admin/shares/abcd1234")):
        response = await off.request(method, path, headers=ADMIN)
        assert response.status == 404
        assert "admin API is off" in (await response.json())["error"]
    await off.close()
    on = await make_client(admin={"password": ADMIN_PASSWORD})
    _, share_id = await shared_conversation(on)
    for headers in ({}, {"Authorization": "guess"}):
        assert (await on.get("/admin/shares", headers=headers)).status == 401
        assert (await on.delete(f"/admin/shares/{share_id}", headers=headers)).status == 401
    assert (await on.get(f"/chatgpt/share/{share_id}")).status == 200


async def test_list_both_kinds_of_share(make_client: MakeClient) -> None:
    client = await make_client(admin={"password": ADMIN_PASSWORD})
    legacy_conv, legacy = await shared_conversation(client)
    await client.close()
    client = await make_client(admin={"password": ADMIN_PASSWORD}, shares={"separate_ids": True})
    own_conv, own = await shared_conversation(client, "again")
    response = await client.get("/admin/shares", headers=ADMIN)
    assert response.status == 200
    body = await response.json()
    assert (body["count"], body["limit"], body["offset"]) == (2, 100, 0)
    views = {view["id"]: view for view in body["shares"]}
    assert views[own]["conversation_id"] == own_conv and views[own]["separate_id"] is True
    assert views[legacy]["conversation_id"] == legacy_conv == legacy and views[legacy]["separate_id"] is False
    assert views[own]["url"] == f"/chatgpt/share/{own}" and views[own]["messages"] == 2
    assert views[own]["updated_at"].endswith("+00:00")  # UTC, on SQLite as on PostgreSQL
    assert [view["id"] for view in body["shares"]] == [own, legacy]  # newest first
    paged = await (await client.get("/admin/shares?limit=1&offset=1", headers=ADMIN)).json()
    assert [view["id"] for view in paged["shares"]] == [legacy]


async def test_revoke_makes_the_link_404_and_leaves_the_conversation(make_client: MakeClient) -> None:
    client = await make_client(admin={"password": ADMIN_PASSWORD}, shares={"separate_ids": True})
    conv_id, share_id = await shared_conversation(client)
    response = await client.delete(f"/admin/shares/{share_id}", headers=ADMIN)
    assert (response.status, await response.json()) == (200, {"revoked": share_id})
    assert (await client.get(f"/chatgpt/share/{share_id}")).status == 404
    assert (await client.get("/admin/shares", headers=ADMIN)).status == 200
    again = await client.delete(f"/admin/shares/{share_id}", headers=ADMIN)
    assert again.status == 404 and share_id in (await again.json())["error"]
    # The conversation lives on; storing it again makes a new link, the revoked one stays dead.
    assert (await client.post("/chatgpt/context", headers={"conversation": conv_id})).status == 200
    stored = await client.post("/chatgpt/store", headers={"conversation": conv_id})
    assert stored.headers["Share-Id"] != share_id
    assert (await client.get(f"/chatgpt/share/{share_id}")).status == 404


async def test_bad_paging_is_a_400(make_client: MakeClient) -> None:
    client = await make_client(admin={"password": ADMIN_PASSWORD})
    for query in ("limit=x", "limit=-1", "limit=1001", "offset=1.5"):
        response = await client.get(f"/admin/shares?{query}", headers=ADMIN)
        assert response.status == 400, query
        assert "must be a whole number" in orjson.loads(await response.read())["error"]
