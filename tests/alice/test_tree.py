"""The tree routes (docs/tree.md): tree, edit, checkout, fork; real app, fake upstream on a socket."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.fake import CHAT_PREFIX, FakeState
from tests.alice.conftest import MakeClient
from tests.alice.helpers import joined_answer, read_sse, wait_until
from tests.alice.test_cors import PAGE, header_list

Client = TestClient[web.Request, web.Application]


def answer_to(question: str) -> str:
    return CHAT_PREFIX + question


async def new_turbo(client: Client, *, stream: bool = False, prompt: str = "") -> str:
    body = orjson.dumps({"stream": stream, "prompt": prompt})
    response = await client.post("/chatgpt/createTurbo", data=body)
    assert response.status == 200
    return await response.text()


async def post(client: Client, route: str, conv: str, body: bytes = b"", **headers: str) -> tuple[int, str]:
    response = await client.post(f"/chatgpt/{route}", data=body, headers={"conversation": conv, **headers})
    return response.status, await response.text()


async def chat(client: Client, conv: str, question: str) -> str:
    status, body = await post(client, "chat", conv, question.encode())
    assert status == 200, body
    return body


async def tree(client: Client, conv: str) -> dict[str, Any]:
    response = await client.post("/chatgpt/tree", headers={"conversation": conv})
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("application/json")
    value: dict[str, Any] = await response.json()
    return value


def by_content(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {message["content"]: message for message in view["messages"]}


def sent_messages(fake_state: FakeState) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in fake_state.last.body["messages"]]


async def test_an_empty_conversation_has_an_empty_tree(client: Client) -> None:
    conv = await new_turbo(client, prompt="Be brief.")
    assert await tree(client, conv) == {
        "id": conv,
        "prompt": "Be brief.",
        "leaf": None,
        "roots": [],
        "messages": [],
        "summaries": [],
    }


async def test_the_tree_after_chat_and_regenerate(client: Client) -> None:
    conv = await new_turbo(client)
    await chat(client, conv, "q1")
    status, again = await post(client, "regenerate", conv)
    assert status == 200
    view = await tree(client, conv)
    q1, a1 = view["messages"][:2]
    a2 = view["messages"][2]
    assert (q1["role"], q1["content"], q1["parent_id"]) == ("user", "q1", None)
    assert view["roots"] == [q1["id"]]
    assert q1["children"] == [a1["id"], a2["id"]]  # siblings oldest first
    assert a1["parent_id"] == a2["parent_id"] == q1["id"]
    assert (a1["role"], a1["content"], a2["content"]) == ("assistant", answer_to("q1"), again)
    assert a1["children"] == a2["children"] == []
    assert view["leaf"] == a2["id"]
    assert all(isinstance(m["created"], int) and m["created"] > 1_700_000_000 for m in view["messages"])
    assert set(q1) == {"id", "parent_id", "role", "content", "created", "children"}


async def test_edit_adds_a_sibling_question_and_sends_only_its_path(
    client: Client, fake_state: FakeState
) -> None:
    conv = await new_turbo(client)
    await chat(client, conv, "q1")
    await chat(client, conv, "q2")
    q2 = by_content(await tree(client, conv))["q2"]["id"]
    status, body = await post(client, "edit", conv, b"q2 edited", message=q2)
    assert (status, body) == (200, answer_to("q2 edited"))
    assert sent_messages(fake_state) == [
        ("user", "q1"),
        ("assistant", answer_to("q1")),
        ("user", "q2 edited"),
    ]

    view = await tree(client, conv)
    messages = by_content(view)
    assert messages[answer_to("q1")]["children"] == [q2, messages["q2 edited"]["id"]]
    assert messages["q2"]["children"] == [messages[answer_to("q2")]["id"]]  # the old branch stays
    assert view["leaf"] == messages[answer_to("q2 edited")]["id"]
    status, context = await post(client, "contextArray", conv)
    assert orjson.loads(context) == ["q1", answer_to("q1"), "q2 edited", answer_to("q2 edited")]


async def test_editing_the_first_question_starts_a_second_root(client: Client, fake_state: FakeState) -> None:
    conv = await new_turbo(client)
    await chat(client, conv, "q1")
    await chat(client, conv, "q2")
    q1 = by_content(await tree(client, conv))["q1"]["id"]
    status, _ = await post(client, "edit", conv, b"first again", message=q1)
    assert status == 200
    assert sent_messages(fake_state) == [("user", "first again")]
    view = await tree(client, conv)
    assert view["roots"] == [q1, by_content(view)["first again"]["id"]]


async def test_edit_streams_like_chat_in_a_streaming_conversation(client: Client) -> None:
    conv = await new_turbo(client, stream=True)
    response = await client.post("/chatgpt/chat", data=b"hello there", headers={"conversation": conv})
    joined_answer(await read_sse(response))
    hello = by_content(await tree(client, conv))["hello there"]["id"]
    response = await client.post(
        "/chatgpt/edit", data=b"hi there", headers={"conversation": conv, "message": hello}
    )
    assert joined_answer(await read_sse(response)) == answer_to("hi there")


async def test_edit_errors(client: Client) -> None:
    conv = await new_turbo(client)
    await chat(client, conv, "q1")
    answer = by_content(await tree(client, conv))[answer_to("q1")]["id"]
    assert await post(client, "edit", conv, b"new") == (400, "message id is nil")
    assert await post(client, "edit", conv, b"new", message=answer) == (
        400,
        f"Only a question can be edited; message {answer} is an answer",
    )
    assert await post(client, "edit", conv, b"new", message="nosuchmessage") == (
        404,
        "failed to find message with provided id: nosuchmessage",
    )
    q1 = by_content(await tree(client, conv))["q1"]["id"]
    assert await post(client, "edit", conv, b"\n", message=q1) == (400, "Question can not be empty")
    assert await post(client, "edit", "nosuchconv", b"x", message=q1) == (
        404,
        "failed to find conversation with provided id: nosuchconv",
    )
    assert len((await tree(client, conv))["messages"]) == 2  # nothing written by a refused edit


async def test_checkout_moves_the_leaf_to_the_newest_leaf_below(
    client: Client, fake_state: FakeState
) -> None:
    conv = await new_turbo(client)
    await chat(client, conv, "q1")
    await chat(client, conv, "q2")
    await chat(client, conv, "q3")
    messages = by_content(await tree(client, conv))
    await post(client, "edit", conv, b"q2b", message=messages["q2"]["id"])

    response = await client.post(
        "/chatgpt/checkout", headers={"conversation": conv, "message": messages["q2"]["id"]}
    )
    assert response.status == 200
    view = await response.json()
    assert view == await tree(client, conv)
    assert view["leaf"] == messages[answer_to("q3")]["id"]  # the old branch's whole length

    await chat(client, conv, "q4")
    assert [content for _, content in sent_messages(fake_state)] == [
        "q1",
        answer_to("q1"),
        "q2",
        answer_to("q2"),
        "q3",
        answer_to("q3"),
        "q4",
    ]


async def test_checkout_of_a_sibling_answer(client: Client, fake_state: FakeState) -> None:
    conv = await new_turbo(client)
    first = await chat(client, conv, "q1")
    await post(client, "regenerate", conv)
    a1 = by_content(await tree(client, conv))[first]["id"]
    status, body = await post(client, "checkout", conv, message=a1)
    assert status == 200 and orjson.loads(body)["leaf"] == a1
    await chat(client, conv, "q2")
    assert sent_messages(fake_state)[1] == ("assistant", first)


async def test_checkout_and_fork_errors(client: Client) -> None:
    conv = await new_turbo(client)
    await chat(client, conv, "q1")
    assert await post(client, "checkout", conv) == (400, "message id is nil")
    for route in ("checkout", "fork"):
        assert await post(client, route, conv, message="nope") == (
            404,
            "failed to find message with provided id: nope",
        )
    assert await post(client, "tree", "nosuchconv") == (
        404,
        "failed to find conversation with provided id: nosuchconv",
    )
    assert await post(client, "tree", "") == (400, "conversation id is nil")


async def test_fork_copies_the_path_and_lives_on_its_own(client: Client, fake_state: FakeState) -> None:
    conv = await new_turbo(client, prompt="Be brief.")
    await chat(client, conv, "q1")
    await chat(client, conv, "q2")
    a1 = by_content(await tree(client, conv))[answer_to("q1")]["id"]
    response = await client.post("/chatgpt/fork", headers={"conversation": conv, "message": a1})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    forked = await response.text()
    assert forked != conv and len(forked) == 8 and forked.isalnum()

    view = await tree(client, forked)
    assert (view["prompt"], [m["content"] for m in view["messages"]]) == (
        "Be brief.",
        ["q1", answer_to("q1")],
    )
    assert view["leaf"] == a1
    before = await tree(client, conv)
    assert await chat(client, forked, "other") == answer_to("other")  # same kind: not streamed
    assert sent_messages(fake_state) == [
        ("system", "Be brief."),
        ("user", "q1"),
        ("assistant", answer_to("q1")),
        ("user", "other"),
    ]
    assert await tree(client, conv) == before

    status, whole = await post(client, "fork", conv)  # default: the leaf
    assert status == 200
    assert [m["content"] for m in (await tree(client, whole))["messages"]] == [
        "q1",
        answer_to("q1"),
        "q2",
        answer_to("q2"),
    ]


async def test_edit_checkout_fork_wait_for_the_answer_and_tree_does_not(
    client: Client, fake_state: FakeState
) -> None:
    conv = await new_turbo(client)
    await chat(client, conv, "q1")
    q1 = by_content(await tree(client, conv))["q1"]["id"]
    fake_state.delay = 0.3
    running = asyncio.create_task(post(client, "chat", conv, b"q2"))
    await wait_until(lambda: len(fake_state.requests) == 2)
    for route in ("edit", "checkout", "fork"):
        assert await post(client, route, conv, b"x", message=q1) == (409, "AI is thinking"), route
    assert len((await tree(client, conv))["messages"]) == 2
    assert (await running)[0] == 200
    assert len((await tree(client, conv))["messages"]) == 4


async def test_compat_status_keeps_the_texts(make_client: MakeClient) -> None:
    client = await make_client(server={"compat_status": True})
    conv = await new_turbo(client)
    assert await post(client, "checkout", conv, message="nope") == (
        500,
        "failed to find message with provided id: nope",
    )


async def test_preflight_allows_the_new_headers(client: Client) -> None:
    response = await client.options(
        "/chatgpt/edit",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "message",
        },
    )
    assert response.status == 204
    assert {"message", "idempotency-key", "conversation"} <= header_list(
        response.headers["Access-Control-Allow-Headers"]
    )


async def test_the_tree_routes_need_alices_auth(make_client: MakeClient) -> None:
    client = await make_client(auth={"mode": "simple"})
    for route in ("tree", "edit", "checkout", "fork"):
        response = await client.post(f"/chatgpt/{route}", headers={"token": "nope", "conversation": "x"})
        assert (response.status, await response.text()) == (401, "Auth failed"), route
