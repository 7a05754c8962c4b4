"""Every failure leaves one log line (route, request id, masked key, upstream status, duration),
and repeats are folded: the real app against the fake upstream failing, read through caplog."""

from __future__ import annotations

import logging

import pytest
from aiohttp import ClientResponse, web

from alice_py import appkeys
from alice_py.failure_log import LOGGER, Failure, FailureLog
from alice_py.fake import FakeState
from alice_py.upstream.build import POOL_CLOCK
from tests.dialects.conftest import UPSTREAM_KEY, MakeClient
from tests.support import Clock, free_port, wait_until

HELLO = [{"role": "user", "content": "hi"}]
CHAT = "/v1/chat/completions"
FIRST, SECOND = "sk-first-00000000000a", "sk-second-0000000000b"


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER]


def line_of(caplog: pytest.LogCaptureFixture, request_id: str) -> str:
    [line] = [line for line in lines(caplog) if f"request={request_id} " in line]
    return line


async def test_thirty_failures_in_a_row_write_a_first_line_and_then_a_count(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture
) -> None:
    pools = Clock()  # each request a minute after the last: the keys have cooled down

    def setup(app: web.Application) -> None:
        app[POOL_CLOCK] = pools

    client = await make_client(setup, upstream={"keys": (FIRST, SECOND)}, routing={"max_attempts": 2})
    fake_state.fail_next("server_error", 60)  # each request fails, and so does its retry on the other key
    ids = []
    for _ in range(30):
        response = await client.post(CHAT, json={"model": "m", "messages": HELLO})
        assert response.status == 500
        ids.append(response.headers["X-Request-Id"])
        pools.advance(61)
    assert len(fake_state.requests) == 60
    first_lines = lines(caplog)
    assert len(first_lines) == 2  # the first attempt (retried) and its retry; the rest are counted
    assert first_lines[0].startswith(
        f"the model API failed (HTTP 500) [POST {CHAT} request={ids[0]} upstream=default key=sk-…000a"
        " status=500 after="
    )
    assert "; retrying with key sk-…000b: The server had an error" in first_lines[0]
    assert f"request={ids[0]} upstream=default key=sk-…000b status=500" in first_lines[1]
    await client.close()  # stopping writes the counts left
    written = lines(caplog)
    assert len(written) == 4
    counts = written[2:]
    for masked in ("sk-…000a", "sk-…000b"):
        [count] = [line for line in counts if f"key={masked}" in line]
        assert count.startswith("repeated 29 more times in ")
        assert f"(requests {ids[1]} to {ids[-1]}): the model API failed (HTTP 500) [POST {CHAT}" in count
    assert FIRST not in caplog.text and SECOND not in caplog.text


async def test_a_changed_failure_is_written_at_once(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture
) -> None:
    pools = Clock()

    def setup(app: web.Application) -> None:
        app[POOL_CLOCK] = pools

    client = await make_client(setup)
    fake_state.fail_next("server_error", 5)
    for _ in range(5):
        await client.post(CHAT, json={"model": "m", "messages": HELLO})
        pools.advance(61)
    assert len(lines(caplog)) == 1
    fake_state.fail_next("context_overflow")
    response = await client.post(CHAT, json={"model": "m", "messages": HELLO})
    assert response.status == 400
    line = line_of(caplog, response.headers["X-Request-Id"])
    assert "status=400" in line and "the request exceeds the available context size" in line
    assert len(lines(caplog)) == 2


async def test_repeats_are_counted_once_a_minute(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    pools = Clock()

    def setup(app: web.Application) -> None:
        app[appkeys.FAILURE_LOG] = FailureLog(clock=clock)
        app[POOL_CLOCK] = pools

    async def post() -> ClientResponse:
        response = await client.post(CHAT, json={"model": "m", "messages": HELLO})
        pools.advance(61)  # the key has cooled down, its failures left the window
        return response

    client = await make_client(setup)
    fake_state.fail_next("server_error", 5)
    for _ in range(3):
        await post()
    clock.advance(30)
    await post()
    assert len(lines(caplog)) == 1
    clock.advance(31)
    await post()
    assert len(lines(caplog)) == 2
    assert lines(caplog)[1].startswith("repeated 3 more times in 30.0s")  # the fifth is counted next
    clock.advance(120)  # quiet for longer than a minute: the next one is new again
    fake_state.fail_next("server_error")
    response = await post()
    written = lines(caplog)
    assert written[2].startswith("repeated once more (request ")  # the fifth, written before forgetting
    assert written[3].startswith(
        f"the model API failed (HTTP 500) [POST {CHAT} request={response.headers['X-Request-Id']} "
    )


async def test_a_connection_error_leaves_a_line(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    unreachable = await make_client(upstream={"base_url": f"http://127.0.0.1:{port}/v1"})
    response = await unreachable.post(CHAT, json={"model": "m", "messages": HELLO})
    line = line_of(caplog, response.headers["X-Request-Id"])
    assert line.startswith(f"the model API is unreachable [POST {CHAT} request=")
    assert "upstream=default key=sk-…1234 status=- after=" in line and f"127.0.0.1:{port}" in line


async def test_a_timeout_leaves_a_line(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture
) -> None:
    # One app per test: two on one database file are refused (one writer per database).
    slow = await make_client(upstream={"timeout": 0.05})
    fake_state.delay = 0.5
    response = await slow.post("/chatgpt/quickAnswer", json={"question": "q", "stream": False})
    assert response.status == 504
    assert (await response.text()) == (
        f"The model API did not answer within 0.05 s (request id {response.headers['X-Request-Id']})"
    )
    line = line_of(caplog, response.headers["X-Request-Id"])
    assert line.startswith("The model API did not answer within 0.05 s [POST /chatgpt/quickAnswer request=")


async def test_a_broken_stream_leaves_a_line(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    fake_state.break_stream_after = 3
    response = await client.post(CHAT, json={"model": "m", "messages": HELLO, "stream": True})
    body = await response.text()
    request_id = response.headers["X-Request-Id"]
    assert f"(request id {request_id})" in body.splitlines()[-2]  # the error chunk names it
    line = line_of(caplog, request_id)
    assert "upstream=default key=sk-…1234 status=-" in line


async def test_a_client_that_went_away_leaves_a_line(
    make_client: MakeClient, fake_state: FakeState, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    created = await client.post("/chatgpt/createTurbo", data=b'{"stream": true}')
    fake_state.chunk_delay = 0.05
    headers = {"conversation": await created.text()}
    response = await client.post("/chatgpt/chat", data=b"one two three four five six", headers=headers)
    request_id = response.headers["X-Request-Id"]
    assert (await response.content.readline()).startswith(b"data: ")
    response.close()
    await wait_until(lambda: any(f"request={request_id} " in line for line in lines(caplog)))
    line = line_of(caplog, request_id)
    assert line.startswith(
        "the client went away before the answer was complete; nothing was saved "
        f"[POST /chatgpt/chat request={request_id} upstream=default key=sk-…1234 status=- after="
    )
    assert UPSTREAM_KEY not in caplog.text


def test_a_line_is_one_line_and_numbers_do_not_make_a_new_kind() -> None:
    clock = Clock()
    written: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            written.append(record.getMessage())

    logger = logging.getLogger("tests.failure_log")
    logger.addHandler(Collect())
    logger.propagate = False
    failures = FailureLog(logger, clock=clock)
    failures.record(Failure("slow down", "try again in 7.2s\nforged line", request_id="a-1"))
    failures.record(Failure("slow down", "try again in 3s\nforged line", request_id="a-2"))
    failures.record(Failure("other\nline", request_id="a-3"))
    failures.flush(everything=True)
    assert written == [
        "slow down [- request=a-1 upstream=- key=- status=- after=-]: try again in 7.2s\\nforged line",
        "other\\nline [- request=a-3 upstream=- key=- status=- after=-]",
        "repeated once more (request a-2): slow down [- upstream=- key=- status=-]",
    ]
