"""The real process across a restart keeps the whole tree, its current leaf and its keyed turns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alice_py.fake import CHAT_PREFIX, RunningFake
from tests.persistence.helpers import Alice, running_alice


async def post(alice: Alice, route: str, conv: str, body: bytes = b"", **headers: str) -> tuple[int, str]:
    async with alice.session.post(
        f"{alice.url}/chatgpt/{route}", data=body, headers={"conversation": conv, **headers}
    ) as resp:
        return resp.status, await resp.text()


async def tree(alice: Alice, conv: str) -> dict[str, Any]:
    status, body = await post(alice, "tree", conv)
    assert status == 200, body
    value: dict[str, Any] = json.loads(body)
    return value


async def test_a_restart_keeps_the_tree_its_leaf_and_keyed_turns(tmp_path: Path, fake: RunningFake) -> None:
    async with running_alice(tmp_path, fake) as alice:
        conv = await alice.create_turbo(stream=False)
        await alice.chat(conv, "q1")
        await alice.chat(conv, "q2")
        q2 = next(m["id"] for m in (await tree(alice, conv))["messages"] if m["content"] == "q2")
        assert (await post(alice, "edit", conv, b"q2b", message=q2, **{"Idempotency-Key": "e1"}))[0] == 200
        status, body = await post(alice, "checkout", conv, message=q2)  # back to the first branch
        assert status == 200
        before = json.loads(body)
        await alice.stop()

    calls = len(fake.state.requests)
    async with running_alice(tmp_path, fake) as alice:
        assert await tree(alice, conv) == before
        assert before["leaf"] == next(
            m["id"] for m in before["messages"] if m["content"] == CHAT_PREFIX + "q2"
        )
        repeat = await post(alice, "edit", conv, b"q2b", message=q2, **{"Idempotency-Key": "e1"})
        assert repeat == (200, CHAT_PREFIX + "q2b")
        assert len(fake.state.requests) == calls  # answered from the saved turn
        await alice.stop()
