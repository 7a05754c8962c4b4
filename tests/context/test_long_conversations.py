"""A conversation far past the window keeps going, every request under the window."""

from __future__ import annotations

import orjson

from alice_py.fake import FakeState
from tests.alice.helpers import sentences
from tests.context.conftest import MakeClient, count_chat


def two_kilobytes(index: int) -> str:
    words = [f"t{index}w{n}" for n in range(400)]
    return " ".join(words)[:2048]


async def test_400_turns_of_2kb_stay_under_the_window(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client(
        context={"windows": {"m": 4096}, "reserve": 256}, conversations={"max_bytes": 4 * 1024 * 1024}
    )
    response = await client.post("/chatgpt/createTurbo", data=orjson.dumps({"prompt": "Be brief."}))
    conv = {"conversation": await response.text()}
    for index in range(400):
        response = await client.post("/chatgpt/chat", headers=conv, data=two_kilobytes(index).encode())
        assert response.status == 200, await response.text()
    assert len(fake_state.requests) == 400
    sizes = [count_chat(request.body["messages"]) for request in fake_state.requests]
    assert max(sizes) <= 4096 - 256
    assert all(request.body["messages"][0]["content"] == "Be brief." for request in fake_state.requests)
    assert int(response.headers["X-Context-Dropped"]) > 390
    assert len(await sentences(client, conv)) == 800
