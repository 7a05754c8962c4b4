"""``POST /send_message`` with bodies that are not forms: a 400 with the dialect's
``{"message"}``, nothing in the log, and no model call; a well-formed form without ``prompt``
keeps the original's 500."""

from __future__ import annotations

import logging

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient

from alice_py.fake import FakeState
from tests.pages.test_admin_sessions import BROKEN_MULTIPART

Client = TestClient[web.Request, web.Application]


@pytest.mark.parametrize(("content_type", "body"), BROKEN_MULTIPART)
async def test_a_broken_multipart_body_is_a_400_and_logs_nothing(
    client: Client,
    fake_state: FakeState,
    caplog: pytest.LogCaptureFixture,
    content_type: str,
    body: bytes,
) -> None:
    caplog.set_level(logging.INFO)
    response = await client.post("/send_message", data=body, headers={"Content-Type": content_type})
    assert response.status == 400
    message = (await response.json())["message"]
    assert message.startswith("The form body cannot be read: ")
    assert fake_state.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_well_formed_multipart_body_without_prompt_keeps_the_original_500(client: Client) -> None:
    form = FormData()
    form.add_field("model", "gpt-4o-mini")
    form.add_field("file", b"bytes", filename="x.bin")  # forces multipart/form-data
    response = await client.post("/send_message", data=form)
    assert response.status == 500
    assert await response.json() == {"message": "prompt is required"}


async def test_a_multipart_prompt_is_answered(client: Client) -> None:
    form = FormData()
    form.add_field("prompt", "hello")
    form.add_field("file", b"bytes", filename="x.bin")
    response = await client.post("/send_message", data=form)
    assert response.status == 200, await response.text()
    assert (await response.json())["text"].endswith("hello")
