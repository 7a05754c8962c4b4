"""node-chatgpt-api's conversation titles (``shouldGenerateTitle``, ``apiOptions.generateTitles``).

As node's ``ChatGPTClient.generateTitle`` does: after the first answer of a new
conversation, one more (non-streamed) model call with node's prompt, its parameters
(temperature 0, no penalties) and its stop words; the answer is kept to letters, digits,
apostrophes and single spaces. The model is the one that answered (node named
``gpt-3.5-turbo``, which a self-hosted model API may not serve).

Unlike node, a failed title call does not fail the request: the answer is already given
(streamed) and kept, so it goes out without a ``title`` and the log says why.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from alice_py import appkeys
from alice_py.engine.answer import Answer
from alice_py.errors import AliceError
from alice_py.web.ratelimit import admission

log = logging.getLogger(__name__)

TITLE_PROMPT = """Write an extremely concise subtitle for this conversation with no more than a few words. \
All words should be capitalized. Exclude punctuation.

||>Message:
{message}
||>Response:
{response}

||>Title:"""
TITLE_PARAMS = {"temperature": 0, "presence_penalty": 0, "frequency_penalty": 0}
_NOT_TITLE = re.compile(r"[^a-zA-Z0-9' ]")
_SPACES = re.compile(r"\s+")


def clean_title(text: str) -> str:
    """node's clean-up: other characters dropped, runs of spaces made one, ends trimmed."""
    return _SPACES.sub(" ", _NOT_TITLE.sub("", text)).strip()


def title_request(
    message: str, response: str, user_label: str
) -> tuple[list[dict[str, str]], dict[str, object]]:
    """The messages and parameters node sends for a title (one system message)."""
    prompt = TITLE_PROMPT.format(message=message, response=response)
    stop = ["||>", f"\n{user_label}:", "<|diff_marker|>"]
    return [{"role": "system", "content": prompt}], {**TITLE_PARAMS, "stop": stop}


async def generate_title(request: web.Request, message: str, answer: Answer, user_label: str) -> str | None:
    """The title of the conversation ``answer`` began, or ``None`` when the model call failed."""
    messages, params = title_request(message, answer.text or "", user_label)
    model = answer.request.body.get("model")
    try:
        await admission(request)()  # a model call like any other
        title = await request.app[appkeys.SERVICE].one_off_chat(
            messages, model=model if isinstance(model, str) else None, params=params
        )
        async with title:
            text = await title.collect()
    except AliceError as exc:
        log.warning(
            "no title for new conversation %s (answered without one): %s", answer.conversation_id, exc.message
        )
        return None
    return clean_title(text)
