"""Tokens used per upstream key and per client: the admin API, the page, kept across restarts."""

from __future__ import annotations

from alice_py.fake import FakeState
from alice_py.web.pages import admin_dashboard_page
from tests.context.conftest import Client, MakeClient

PASSWORD = "admin-pass-123"
ADMIN = {"Authorization": PASSWORD}


async def chat_turns(client: Client, count: int) -> None:
    conv = {"conversation": await (await client.post("/chatgpt/createTurbo")).text()}
    for index in range(count):
        response = await client.post("/chatgpt/chat", headers=conv, data=f"question {index}".encode())
        assert response.status == 200


async def test_usage_per_key_and_client_survives_a_restart(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(admin={"password": PASSWORD})
    await chat_turns(client, 3)
    await client.post(
        "/chatgpt/quickAnswer", data=b'{"question": "one-off", "stream": false}'
    )  # not a conversation's
    reported = [r.body for r in fake_state.requests if r.body and r.body.get("messages")][:3]
    prompt = sum(len(" ".join(m["content"] for m in body["messages"]).split()) for body in reported)
    response = await client.get("/admin/usage", headers=ADMIN)
    assert response.status == 200
    usage = await response.json()
    [key] = usage["upstream_keys"]
    assert key["name"] == "sk-…1234" and key["answers"] == 3
    assert key["prompt_tokens"] == prompt
    assert key["total_tokens"] == key["prompt_tokens"] + key["completion_tokens"]
    [who] = usage["clients"]
    assert who["name"] == "addr:127.0.0.1" and who["prompt_tokens"] == prompt
    assert "sk-test-0000000000001234" not in await response.text()
    await client.close()  # a clean stop writes the totals

    again = await make_client(admin={"password": PASSWORD})
    await chat_turns(again, 1)
    after = await (await again.get("/admin/usage", headers=ADMIN)).json()
    assert after["upstream_keys"][0]["answers"] == 4
    assert after["upstream_keys"][0]["prompt_tokens"] > prompt


async def test_the_usage_api_is_the_admins(make_client: MakeClient) -> None:
    off = await make_client()
    assert (await off.get("/admin/usage", headers=ADMIN)).status == 404
    await off.close()
    on = await make_client(admin={"password": PASSWORD})
    assert (await on.get("/admin/usage")).status == 401
    assert (await on.get("/admin/usage", headers={"Authorization": "guess"})).status == 401


def test_the_admin_page_shows_the_tables_escaped() -> None:
    usage = {
        "upstream_keys": [
            {"name": "sk-…abcd", "prompt_tokens": 12345, "completion_tokens": 678, "answers": 9}
        ],
        "clients": [{"name": "addr:<script>", "prompt_tokens": 1, "completion_tokens": 2, "answers": 1}],
    }
    page = admin_dashboard_page(
        "/", "csrf", version="1", uptime=1, conversations=0, shares=0, key_rows=(), upstreams=(), usage=usage
    )
    assert "<h2>Tokens used</h2>" in page
    assert '<td class="key">sk-…abcd</td><td class="num">12,345</td><td class="num">678</td>' in page
    assert "addr:&lt;script&gt;" in page and "<script>" not in page.split("</head>")[1]


async def test_a_refused_write_is_kept_for_the_next(tmp_path: object) -> None:
    from collections.abc import Iterable

    from alice_py.db.usage import UsageTotal
    from alice_py.usage import UsageBook

    class Flaky:
        def __init__(self) -> None:
            self.fail, self.written = True, []

        async def add(self, deltas: Iterable[UsageTotal]) -> None:
            rows = list(deltas)
            if self.fail:
                self.fail = False
                raise OSError("disk full")
            self.written.extend(rows)

    repository = Flaky()
    book = UsageBook(repository)  # type: ignore[arg-type]
    book.record("sk-test-0000000000001234", "addr:10.0.0.1", 10, 2)
    await book.flush()  # refused: kept
    book.record("sk-test-0000000000001234", None, 5, 1)
    await book.flush()
    by_scope = {row.scope: row for row in repository.written}
    assert (by_scope["upstream"].prompt_tokens, by_scope["upstream"].answers) == (15, 2)
    assert by_scope["upstream"].label == "sk-…1234" and "0000" not in by_scope["upstream"].name
    assert (by_scope["client"].prompt_tokens, by_scope["client"].completion_tokens) == (10, 2)
