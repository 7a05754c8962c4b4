"""Every answer carries ``X-Request-Id`` (streams too), an id unique per request, which a
browser may read (CORS) and which a failure message names."""

from __future__ import annotations

import re

from alice_py.fake import FakeState
from tests.dialects.conftest import MakeClient

HELLO = [{"role": "user", "content": "hi"}]
ID = re.compile(r"([0-9a-f]{6})-([0-9a-f]+)")


async def test_every_kind_of_answer_has_a_request_id(make_client: MakeClient) -> None:
    client = await make_client()
    created = await client.post("/chatgpt/createTurbo", data=b'{"stream": true}')
    answers = [
        created,
        await client.post("/chatgpt/chat", data=b"hi", headers={"conversation": await created.text()}),  # SSE
        await client.post("/v1/chat/completions", json={"messages": HELLO, "stream": True}),
        await client.post("/chat", json={"messages": HELLO}),  # NDJSON
        await client.post("/v1/chat/completions", json={"messages": HELLO}),
        await client.post("/chatgpt/chat", headers={"conversation": "nope"}),  # an error
        await client.get("/no/such/page"),  # aiohttp's own 404
        await client.get("/healthz"),
    ]
    ids = []
    for response in answers:
        await response.read()
        match = ID.fullmatch(response.headers["X-Request-Id"])
        assert match, response.headers["X-Request-Id"]
        ids.append(match.groups())
    assert len({prefix for prefix, _ in ids}) == 1  # one process, one prefix
    assert [int(count, 16) for _, count in ids] == list(range(1, len(answers) + 1))


async def test_browsers_may_read_the_request_id(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/v1/models", headers={"Origin": "https://app.example"})
    assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]


async def test_the_request_id_in_a_message_is_the_header(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    fake_state.fail_next("server_error")
    response = await client.post("/chatgpt/quickAnswer", json={"question": "q", "stream": False})
    assert (await response.text()).endswith(f"(request id {response.headers['X-Request-Id']})")
