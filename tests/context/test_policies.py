"""The context policies through the Alice API: exactly what reaches the upstream."""

from __future__ import annotations

import orjson

from alice_py.fake import FakeState
from tests.alice.helpers import joined_answer, parse_sse, sentences
from tests.context.conftest import Client, MakeClient, count_chat

PROMPT = "You are a terse assistant."


def question(index: int) -> str:
    return f"Question {index}: " + " ".join(f"word{index}x{n}" for n in range(12))


async def turbo(client: Client, prompt: str = PROMPT, stream: bool = False) -> dict[str, str]:
    body = orjson.dumps({"prompt": prompt, "stream": stream})
    response = await client.post("/chatgpt/createTurbo", data=body)
    assert response.status == 200
    return {"conversation": await response.text()}


async def ask(
    client: Client, headers: dict[str, str], text: str, status: int = 200
) -> tuple[str, dict[str, str]]:
    response = await client.post("/chatgpt/chat", headers=headers, data=text.encode())
    body = await response.text()
    assert response.status == status, body
    return body, dict(response.headers)


async def test_drop_oldest_keeps_the_prompt_and_the_newest_whole_turns(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    conv = await turbo(client)
    for index in range(8):
        _, headers = await ask(client, conv, question(index))
    sent = fake_state.last.body["messages"]
    stored = await sentences(client, conv)
    assert len(stored) == 16  # the stored conversation keeps everything

    assert sent[0] == {"role": "system", "content": PROMPT}
    history = sent[1:]
    # The newest turns, whole (a question with its answer), then the question: the tail of the path.
    assert [m["role"] for m in history] == ["user", "assistant"] * ((len(history) - 1) // 2) + ["user"]
    assert [m["content"] for m in history] == stored[-len(history) - 1 : -1]
    assert history[-1]["content"] == question(7)
    kept_turns = (len(history) - 1) // 2
    assert 0 < kept_turns < 7
    # Our count is tiktoken's, it fits 300 - 50, and one more (older) turn would not have.
    tokens = count_chat(sent)
    assert int(headers["X-Context-Tokens"]) == tokens <= 250
    older_turn = stored[-len(history) - 3 : -len(history) - 1]
    older = [{"role": "user", "content": older_turn[0]}, {"role": "assistant", "content": older_turn[1]}]
    assert count_chat([sent[0], *older, *history]) > 250
    assert headers["X-Context-Window"] == "300"
    assert headers["X-Context-Dropped"] == str(7 - kept_turns)
    # Nothing added in place of what was left out.
    assert all(m["content"] in stored or m["content"] == PROMPT for m in sent)


async def test_a_conversation_that_fits_is_sent_whole(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client()
    conv = await turbo(client)
    await ask(client, conv, "hello")
    _, headers = await ask(client, conv, "again")
    assert len(fake_state.last.body["messages"]) == 4
    assert headers["X-Context-Dropped"] == "0"
    assert int(headers["X-Context-Tokens"]) == count_chat(fake_state.last.body["messages"])


async def test_the_gpt3_transcript_drops_whole_pairs_and_keeps_its_preamble(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    # The gpt3 preset asks for 500 tokens of answer: that is the room kept, not the 50.
    client = await make_client(context={"windows": {"m3": 1000}, "reserve": 50})
    preamble = "The following is a conversation with an AI."
    response = await client.post("/chatgpt/create", data=preamble.encode())
    conv = {"conversation": await response.text()}
    for index in range(8):
        _, headers = await ask(client, conv, question(index))
    prompt = fake_state.last.body["prompt"]
    assert prompt.startswith(preamble + "\n\nHuman: ")
    assert prompt.endswith(f"\nHuman: {question(7)}\nAI: ")
    lines = prompt[len(preamble) + 2 : -len("\nAI: ")].split("\n")
    # Whole pairs: Human, AI, Human, AI … Human (the question), from the newest back.
    assert [line.split(":", 1)[0] for line in lines] == ["Human", "AI"] * ((len(lines) - 1) // 2) + ["Human"]
    assert lines[0] != f"Human: {question(0)}"
    dropped = 7 - (len(lines) - 1) // 2
    assert headers["X-Context-Dropped"] == str(dropped) and dropped > 0
    assert int(headers["X-Context-Tokens"]) <= 500
    assert len(await sentences(client, conv)) == 16


async def test_error_policy_refuses_and_sends_nothing(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client(context={"policy": "error", "windows": {"m": 300}, "reserve": 50})
    conv = await turbo(client)
    refused = None
    for index in range(8):
        response = await client.post("/chatgpt/chat", headers=conv, data=question(index).encode())
        if response.status != 200:
            refused = (index, response.status, await response.text())
            break
    assert refused is not None
    index, status, message = refused
    assert status == 400
    assert (
        "tokens; the model's window is 300 (50 kept for the answer): roll back or start a new one" in message
    )
    assert message.startswith("this conversation is ")
    assert len(fake_state.requests) == index  # the refused question reached nobody
    assert len(await sentences(client, conv)) == 2 * index  # the conversation is unchanged


async def test_a_question_too_long_alone_is_a_clear_400(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    conv = await turbo(client)
    body, _ = await ask(client, conv, "word " * 400, status=400)
    assert "this question is" in body and "the model's window is 300" in body
    assert fake_state.requests == []


async def test_one_retry_after_the_upstreams_length_refusal(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    """Our count fits a 1000-token window; the upstream counts 3 tokens a word and has 300."""
    client = await make_client(context={"windows": {"m": 1000}, "reserve": 50})
    conv = await turbo(client)
    for index in range(5):
        await ask(client, conv, question(index))
    fake_state.context_window, fake_state.tokens_per_word = 300, 3
    before = len(fake_state.requests)
    answer, headers = await ask(client, conv, question(5))
    assert answer.endswith(question(5))
    first, retry = fake_state.requests[before:]
    assert len(retry.body["messages"]) < len(first.body["messages"])
    assert retry.body["messages"][0]["role"] == "system"
    assert retry.body["messages"][-1]["content"] == question(5)
    assert headers["X-Context-Tokens"] == str(count_chat(retry.body["messages"]))
    assert int(headers["X-Context-Dropped"]) > 0


async def test_never_more_than_one_retry(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client(context={"windows": {"m": 1000}, "reserve": 50})
    conv = await turbo(client)
    for index in range(5):
        await ask(client, conv, question(index))
    # llama.cpp's refusal (n_ctx 4096 for n_prompt_tokens 5000), for the request and its retry.
    fake_state.fail_next("context_overflow", 2)
    before = len(fake_state.requests)
    body, _ = await ask(client, conv, question(5), status=502)
    assert body == "the request exceeds the available context size, try increasing it"
    first, retry = fake_state.requests[before:]
    assert len(retry.body["messages"]) < len(first.body["messages"])
    assert len(await sentences(client, conv)) == 10


async def test_no_retry_when_the_question_alone_is_too_long_for_the_upstream(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client(context={"windows": {"m": 1000}, "reserve": 50})
    conv = await turbo(client)
    for index in range(5):
        await ask(client, conv, question(index))
    fake_state.context_window, fake_state.tokens_per_word = 60, 3
    before = len(fake_state.requests)
    body, _ = await ask(client, conv, question(5), status=502)
    assert "maximum context length is 60 tokens" in body  # the upstream's own refusal stands
    assert len(fake_state.requests) == before + 1


async def test_a_stream_carries_the_headers_and_asks_for_usage(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    client = await make_client()
    conv = await turbo(client, stream=True)
    for index in range(6):
        response = await client.post("/chatgpt/chat", headers=conv, data=question(index).encode())
        assert joined_answer(parse_sse(await response.text())).endswith(question(index))
    assert fake_state.last.body["stream_options"] == {"include_usage": True}
    assert int(response.headers["X-Context-Dropped"]) > 0
    assert int(response.headers["X-Context-Tokens"]) == count_chat(fake_state.last.body["messages"])
    exposed = response.headers["Access-Control-Expose-Headers"]
    assert all(name in exposed for name in ("X-Context-Tokens", "X-Context-Window", "X-Context-Dropped"))


async def test_context_info(make_client: MakeClient, fake_state: FakeState) -> None:
    client = await make_client()
    conv = await turbo(client)
    for index in range(6):
        await ask(client, conv, question(index))
    response = await client.post("/chatgpt/contextInfo", headers=conv)
    assert response.status == 200
    info = orjson.loads(await response.read())
    stored = await sentences(client, conv)
    everything = [{"role": "system", "content": PROMPT}] + [
        {"role": ("user", "assistant")[n % 2], "content": text} for n, text in enumerate(stored)
    ]
    # The whole context, before trimming: the upstream's count (a token per word) of the last
    # request sent whole, and ours of every message since.
    whole = [
        r.body["messages"] for n, r in enumerate(fake_state.requests) if len(r.body["messages"]) == 2 * n + 2
    ]
    last_whole = whole[-1]
    since = everything[len(last_whole) :]
    upstream = len(" ".join(m["content"] for m in last_whole).split())
    assert info["tokens"] == upstream + count_chat(since) - 3 > 300
    assert info["window"] == 300
    assert info["dropped_turns"] > 0 and info["summarized_turns"] == 0
    # The fake counts a token per word of the request and of the answer: summed over the answers.
    assert info["usage"]["prompt_tokens"] == sum(
        len(" ".join(m["content"] for m in r.body["messages"]).split()) for r in fake_state.requests
    )
    assert (
        info["usage"]["total_tokens"] == info["usage"]["prompt_tokens"] + info["usage"]["completion_tokens"]
    )
    missing = await client.post("/chatgpt/contextInfo", headers={"conversation": "nope"})
    assert missing.status == 404
    nil = await client.post("/chatgpt/contextInfo")
    assert nil.status == 400 and await nil.text() == "conversation id is nil"


async def test_the_upstreams_reported_window_is_used(make_client: MakeClient, fake_state: FakeState) -> None:
    """vLLM reports ``max_model_len``: past the default window, the model's own one applies."""
    fake_state.models, fake_state.model_windows = ("m",), {"m": 5000}
    client = await make_client(context={"default_window": 300, "reserve": 50})
    conv = await turbo(client)
    for index in range(8):
        _, headers = await ask(client, conv, question(index))
    assert headers["X-Context-Window"] == "5000" and headers["X-Context-Dropped"] == "0"
    assert [r.path for r in fake_state.requests].count("/v1/models") == 1


async def test_counts_start_from_the_upstreams_own(make_client: MakeClient, fake_state: FakeState) -> None:
    """The fake counts 3 tokens a word: once it has said so, the conversation's size is its
    count plus ours of what came since, and the budget shrinks to fit by its count."""
    fake_state.tokens_per_word = 3
    client = await make_client(context={"windows": {"m": 100_000}})
    conv = await turbo(client)
    await ask(client, conv, question(1))
    _, headers = await ask(client, conv, question(2))
    sent = fake_state.last.body["messages"]
    assert int(headers["X-Context-Tokens"]) == count_chat(sent)  # the headers tell our count
    info = orjson.loads(await (await client.post("/chatgpt/contextInfo", headers=conv)).read())
    upstream_second = 3 * len(" ".join(m["content"] for m in sent).split())
    stored = await sentences(client, conv)
    assert info["tokens"] == upstream_second + count_chat([{"role": "assistant", "content": stored[-1]}]) - 3


async def test_a_finer_upstream_tokenizer_is_fitted_without_a_refusal(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    """Our count fits 1000 tokens; the upstream's (3 a word) would not: after its first usage
    figures the budget shrinks by its ratio, and it never has to refuse."""
    fake_state.tokens_per_word, fake_state.context_window = 3, 950
    client = await make_client(context={"windows": {"m": 1000}, "reserve": 50})
    conv = await turbo(client)
    for index in range(12):
        await ask(client, conv, question(index))
    bodies = [r.body for r in fake_state.requests]
    assert len(bodies) == 12  # no refusal, no retry
    assert all(3 * len(" ".join(m["content"] for m in b["messages"]).split()) <= 950 for b in bodies)
