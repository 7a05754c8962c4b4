"""``[server] log_format = "json"``: log lines as JSON objects with the request id (the one in
``X-Request-Id``), the upstream and the masked key of the model call."""

from __future__ import annotations

import io
import logging

import orjson

from alice_py.failure_log import LOGGER
from alice_py.fake import FakeState
from alice_py.logjson import JsonFormatter
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
