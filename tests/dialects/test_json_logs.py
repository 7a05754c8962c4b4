"""``[server] log_format = "json"``: log lines as JSON objects with the request id (the one in
``X-Request-Id``), the upstream and the masked key of the model call."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from alice_py.failure_log import LOGGER
from alice_py.fake import FakeState
from alice_py.logjson import JsonFormatter
from alice_py.web.accesslog import ACCESS_LOGGER, runner_kwargs
from tests.dialects.conftest import UPSTREAM_KEY, MakeClient


async def test_a_failure_is_one_json_line_with_request_id_upstream_and_masked_key(
    make_client: MakeClient, fake_state: FakeState
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        client = await make_client()
        fake_state.fail_next("bad_request")
        response = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
        )
        assert response.status == 400
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    [line] = stream.getvalue().splitlines()
    record = orjson.loads(line)
    assert record["request_id"] == response.headers["X-Request-Id"]
    assert (record["upstream"], record["key"], record["level"]) == ("default", "sk-…1234", "INFO")
    assert "status=400" in record["message"] and UPSTREAM_KEY not in line
    assert record["time"].endswith("+00:00")


async def test_the_access_line_of_a_model_call_is_its_usage_record(
    aiohttp_client: Any, make_app: Callable[..., web.Application]
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        server = TestServer(make_app())
        await server.start_server(**runner_kwargs(True))  # as `alice-py serve` runs it
        client = await aiohttp_client(server)
        response = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
        )
        assert response.status == 200
        usage = (await response.json())["usage"]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    [line] = stream.getvalue().splitlines()
    record = orjson.loads(line)
    assert record["request_id"] == response.headers["X-Request-Id"]
    served = (record["upstream"], record["key"], record["tokens"])
    assert served == ("default", "sk-…1234", usage["total_tokens"])
    assert '"POST /v1/chat/completions" 200' in record["message"] and UPSTREAM_KEY not in line
