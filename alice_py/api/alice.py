"""Alice ChatGPT's API, ``/chatgpt/*`` (the contract: ``docs/alice-api.md``).

Handlers are thin: read the request, call the ``ConversationService``, write the
answer as plain text, JSON or a stream. Errors are raised and formatted by the
error middleware as plain text, with ``--compat-status`` choosing the original's
status codes. Auth (``token`` / ``uuid``) covers every route but the share page.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from alice_py import appkeys
from alice_py.engine import context as engine_context
from alice_py.engine.answer import Answer
from alice_py.engine.context import ContextPolicy
from alice_py.engine.presets import Kind
from alice_py.engine.service import ConversationService
from alice_py.errors import BadRequest, ShareNotFound
from alice_py.web.body import (
    bool_field,
    read_body,
    read_json_object,
    read_text,
    required_string,
    string_field,
    string_list_field,
)
from alice_py.web.context_headers import context_headers
from alice_py.web.errors import NOSNIFF, safe_text
from alice_py.web.pages import share_response
from alice_py.web.ratelimit import Admit, admission
from alice_py.web.sse import stream_answer

PREFIX = "/chatgpt"
SHARE_ROUTE = f"{PREFIX}/share/{{id}}"
"""The one route of ``/chatgpt`` that needs no credentials: a share's link is meant to be opened."""
SHARE_ID_HEADER = "Share-Id"
SHARE_URL_HEADER = "Share-URL"
TURBO_BODY_ERROR = "Failed to read request body"
QUESTION_MISSING = "Question can't be null"


def text(body: str) -> web.Response:
    """A plain-text answer; ``nosniff`` as on the errors: it holds the client's own text (a
    conversation's context, an answer steered by a question), never to be taken for HTML."""
    return web.Response(body=safe_text(body), content_type="text/plain", charset="utf-8", headers=NOSNIFF)


def json_response(value: object) -> web.Response:
    return web.Response(body=orjson.dumps(value), content_type="application/json")


def service(request: web.Request) -> ConversationService:
    return request.app[appkeys.SERVICE]


def conversation_id(request: web.Request) -> str:
    conv_id = request.headers.get("conversation", "")
    if not conv_id:
        raise BadRequest("conversation id is nil")
    return conv_id


def message_id(request: web.Request) -> str:
    """The ``message`` header (a message id, from ``/chatgpt/tree``)."""
    value = request.headers.get("message", "")
    if not value:
        raise BadRequest("message id is nil")
    return value


def idempotency_key(request: web.Request) -> str | None:
    return request.headers.get("Idempotency-Key")


def wants(request: web.Request, media_type: str) -> bool:
    return media_type in request.headers.get("Accept", "")


async def respond(request: web.Request, answer: Answer) -> web.StreamResponse:
    """A stream for streaming answers, else the whole answer as plain text."""
    if answer.streaming:
        return await stream_answer(request, answer)
    async with answer:
        response = text(await answer.collect())
    if headers := context_headers(answer):  # none for one-off answers
        response.headers.update(headers)
    return response


def new_conversation(request: web.Request) -> Admit:
    """Creating a conversation counts against the client's limit (``[limits] per_client``)."""
    return admission(request, model_call=False)


def _short_body(raw: str) -> bool:
    """The original took a body of 0 or 1 bytes for no body at all (a stray newline)."""
    return len(raw.encode("utf-8")) <= 1


# --- creating conversations ----------------------------------------------------------------


async def create(request: web.Request) -> web.Response:
    prompt = await read_text(request)
    settings = request.headers.get("settings", "")
    conv = await service(request).create(
        Kind.GPT3, prompt=prompt, settings=settings, admit=new_conversation(request)
    )
    return text(conv.id)


async def create_turbo(request: web.Request) -> web.Response:
    short = len(await read_body(request)) <= 1
    data = {} if short else await read_json_object(request, invalid=TURBO_BODY_ERROR) or {}
    prompt = string_field(data, "prompt", default="", prefix=TURBO_BODY_ERROR)
    stream = bool_field(data, "stream", default=False, prefix=TURBO_BODY_ERROR)
    conv = await service(request).create(
        Kind.TURBO, prompt=prompt, stream=stream, admit=new_conversation(request)
    )
    return text(conv.id)


async def create_gpt4(request: web.Request) -> web.Response:
    prompt = await read_text(request)
    conv = await service(request).create(
        Kind.GPT4, prompt=None if _short_body(prompt) else prompt, admit=new_conversation(request)
    )
    return text(conv.id)


async def create_role_play(request: web.Request) -> web.Response:
    data = await read_json_object(request)
    if data is None:
        raise BadRequest("A JSON body with human_name, ai_name and prompt is required")
    human_name = required_string(data, "human_name")
    ai_name = required_string(data, "ai_name")
    prompt = required_string(data, "prompt")
    conv = await service(request).create(
        Kind.GPT3, prompt=prompt, human_name=human_name, ai_name=ai_name, admit=new_conversation(request)
    )
    return text(conv.id)


# --- turns ------------------------------------------------------------------------------------


async def chat(request: web.Request) -> web.StreamResponse:
    question = await read_text(request)
    conv_id = request.headers.get("conversation", "")
    if conv_id:
        answer = await service(request).ask(
            conv_id, question, idempotency_key=idempotency_key(request), admit=admission(request)
        )
    else:
        # No conversation, nothing kept: a repeat is just another one-off answer.
        answer = await service(request).one_off(
            Kind.TURBO, question=question, stream=True, admit=admission(request)
        )
    return await respond(request, answer)


async def regenerate(request: web.Request) -> web.StreamResponse:
    answer = await service(request).regenerate(
        conversation_id(request), idempotency_key=idempotency_key(request), admit=admission(request)
    )
    return await respond(request, answer)


# --- the tree (docs/tree.md) ------------------------------------------------------------------


async def tree(request: web.Request) -> web.Response:
    return json_response(await service(request).tree(conversation_id(request)))


async def edit(request: web.Request) -> web.StreamResponse:
    conv_id, edited = conversation_id(request), message_id(request)
    answer = await service(request).edit(
        conv_id,
        edited,
        await read_text(request),
        idempotency_key=idempotency_key(request),
        admit=admission(request),
    )
    return await respond(request, answer)


async def checkout(request: web.Request) -> web.Response:
    conv_id, target = conversation_id(request), message_id(request)
    return json_response((await service(request).checkout(conv_id, target)).outline())


async def fork(request: web.Request) -> web.Response:
    conv_id = conversation_id(request)
    forked = await service(request).fork(conv_id, request.headers.get("message") or None)
    return text(forked.id)


async def rollback(request: web.Request) -> web.Response:
    await service(request).rollback(conversation_id(request))
    return text("Rollback Succeeded")


async def context(request: web.Request) -> web.Response:
    return text(await service(request).context(conversation_id(request)))


async def context_info(request: web.Request) -> web.Response:
    """``{tokens, window, dropped_turns, summarized_turns, usage}`` (docs/context.md)."""
    engine = service(request)
    conv = await engine.get(conversation_id(request))
    policy = engine.context_policy or ContextPolicy(request.app[appkeys.CONFIG].context)
    return json_response(engine_context.context_info(policy, conv, engine.models))


async def context_array(request: web.Request) -> web.Response:
    return json_response(await service(request).context_array(conversation_id(request)))


async def finish(request: web.Request) -> web.Response:
    await service(request).finish(conversation_id(request))
    return text("Conversation finished")


# --- shares -----------------------------------------------------------------------------------


async def store(request: web.Request) -> web.Response:
    """The share's id is the conversation's (the original's way) unless ``[shares] separate_ids``
    gives it one of its own; either way the answer names it (JSON, or the ``Share-*`` headers)."""
    conv_id, prompt, sentences = await service(request).share_snapshot(conversation_id(request))
    shares = request.app[appkeys.SHARES]
    if request.app[appkeys.CONFIG].shares.separate_ids:
        share_id = await shares.put_separate(conv_id, prompt, sentences, in_use=service(request).is_live)
    else:
        await shares.put(conv_id, prompt, sentences)
        share_id = conv_id
    url = f"{PREFIX}/share/{share_id}"
    response = (
        json_response({"id": share_id, "url": url})
        if wants(request, "application/json")
        else text("保存成功")
    )
    response.headers[SHARE_ID_HEADER] = share_id
    response.headers[SHARE_URL_HEADER] = url
    return response


async def share(request: web.Request) -> web.Response:
    found = await request.app[appkeys.SHARES].get(request.match_info["id"])
    if found is None:
        raise ShareNotFound()
    if wants(request, "text/html"):
        return share_response(found)
    return json_response({"Id": found.id, "Prompt": found.prompt, "SentenceList": list(found.sentences)})


# --- one-off answers --------------------------------------------------------------------------


async def quick_answer(request: web.Request) -> web.StreamResponse:
    data = await read_json_object(request)
    if data is None:
        raise BadRequest(QUESTION_MISSING)
    question = string_field(data, "question")
    if not question:
        raise BadRequest(QUESTION_MISSING)
    answer = await service(request).one_off(
        Kind.for_conv_type(string_field(data, "convType")),
        question=question,
        prompt=string_field(data, "prompt", default="") or "",
        examples=string_list_field(data, "examples"),
        stream=bool_field(data, "stream", default=True),
        admit=admission(request),
    )
    return await respond(request, answer)


async def summary(request: web.Request) -> web.StreamResponse:
    answer = await service(request).summary(await read_text(request), admit=admission(request))
    return await respond(request, answer)


def add_routes(app: web.Application) -> None:
    """The routes, Alice's auth on ``/chatgpt`` (the share page is public), plain-text errors."""
    post = {
        "create": create,
        "createTurbo": create_turbo,
        "createGPT4": create_gpt4,
        "createRolePlay": create_role_play,
        "chat": chat,
        "regenerate": regenerate,
        "tree": tree,
        "edit": edit,
        "checkout": checkout,
        "fork": fork,
        "rollback": rollback,
        "context": context,
        "contextArray": context_array,
        "contextInfo": context_info,
        "finish": finish,
        "store": store,
        "quickAnswer": quick_answer,
        "summary": summary,
    }
    for name, handler in post.items():
        app.router.add_post(f"{PREFIX}/{name}", handler)
    app.router.add_get(SHARE_ROUTE, share, allow_head=False)
