"""An async client of the Alice API (``/chatgpt/*``) for the terminal chat.

Errors come in two weights. ``Fatal`` ones end the session, because nothing will work
until the user changes something: the server cannot be reached (``Unreachable``) or
refuses the token (``AuthRefused``). ``ServerError`` carries the server's own message
(``AI is thinking``, an upstream failure …) and the session goes on.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import aiohttp
import orjson

from alice_py.chat import AuthMode, ConvKind
from alice_py.upstream.sse import iter_events

PREFIX = "/chatgpt"
DONE = "[DONE]"
AUTH_FAILED = "Auth failed"
BUSY = "AI is thinking"
NOT_FOUND = "failed to find conversation with provided id"
CONNECT_TIMEOUT = 10.0


class ChatError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Fatal(ChatError):
    """Nothing works until the user fixes something: the session ends with status 1."""


class Unreachable(Fatal):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach alice-py at {url}: {reason}; start it with `alice-py serve --demo`")


class AuthRefused(Fatal):
    def __init__(self) -> None:
        super().__init__(
            "the server refused the token: pass --token with the server's secret "
            "(and --auth normal or --auth none if the server runs in that mode)"
        )


class ServerError(ChatError):
    """The server's own message for a failed request; the session goes on."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    @property
    def busy(self) -> bool:
        return self.status in (409, 500) and self.message == BUSY

    @property
    def conversation_gone(self) -> bool:
        return self.message.startswith(NOT_FOUND)


@dataclass(frozen=True, slots=True)
class Credentials:
    mode: AuthMode = "simple"
    secret: str = "alice"

    def headers(self) -> dict[str, str]:
        """Fresh per request: in normal mode the server accepts each ``uuid`` once."""
        if self.mode == "none":
            return {}
        if self.mode == "simple":
            return {"token": self.secret}
        nonce = uuid.uuid4().hex
        digest = hashlib.sha256((self.secret + nonce).encode("utf-8")).hexdigest()
        return {"uuid": nonce, "token": digest}


def _reason(exc: aiohttp.ClientConnectorError) -> str:
    os_error = exc.os_error
    if isinstance(os_error, socket.gaierror) and os_error.strerror:
        return os_error.strerror
    if os_error.errno:
        return os.strerror(os_error.errno)
    return str(os_error) or type(os_error).__name__


class AliceClient:
    """One server, one ``aiohttp.ClientSession`` (made in the running loop by ``open``)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, credentials: Credentials) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials

    @classmethod
    def open(cls, base_url: str, credentials: Credentials) -> AliceClient:
        # No total or read timeout: a model may think for minutes, and Ctrl-C stops a wait.
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_connect=CONNECT_TIMEOUT)
        return cls(aiohttp.ClientSession(timeout=timeout), base_url, credentials)

    async def close(self) -> None:
        await self._session.close()

    async def create(self, kind: ConvKind, prompt: str) -> str:
        """A new conversation of ``kind``; its id. Turbo conversations stream their answers."""
        if kind == "turbo":
            body = orjson.dumps({"prompt": prompt, "stream": True})
            return await self._text("createTurbo", body, content_type="application/json")
        return await self._text("createGPT4" if kind == "gpt4" else "create", prompt.encode("utf-8"))

    def ask(self, conv_id: str, question: str) -> AsyncGenerator[str, None]:
        return self._answer("chat", conv_id, question.encode("utf-8"))

    def regenerate(self, conv_id: str) -> AsyncGenerator[str, None]:
        return self._answer("regenerate", conv_id, b"")

    async def rollback(self, conv_id: str) -> str:
        return await self._text("rollback", b"", conv_id)

    async def context(self, conv_id: str) -> str:
        return await self._text("context", b"", conv_id)

    async def finish(self, conv_id: str) -> str:
        return await self._text("finish", b"", conv_id)

    async def share(self, conv_id: str) -> str:
        """Store the conversation; the full address of its share page."""
        raw = await self._text("store", b"", conv_id, accept="application/json")
        try:
            path = orjson.loads(raw)["url"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            path = f"{PREFIX}/share/{conv_id}"  # a server that ignores Accept says only 保存成功
        return f"{self.base_url}{path}"

    def _headers(self, conv_id: str | None, content_type: str, accept: str | None) -> dict[str, str]:
        headers = {"Content-Type": content_type, **self._credentials.headers()}
        if conv_id is not None:
            headers["conversation"] = conv_id
        if accept is not None:
            headers["Accept"] = accept
        return headers

    async def _post(
        self,
        route: str,
        body: bytes,
        conv_id: str | None = None,
        content_type: str = "text/plain; charset=utf-8",
        accept: str | None = None,
    ) -> aiohttp.ClientResponse:
        """The response, status 200 only: anything else is raised as its error."""
        url = f"{self.base_url}{PREFIX}/{route}"
        headers = self._headers(conv_id, content_type, accept)
        try:
            response = await self._session.post(url, data=body, headers=headers)
        except aiohttp.ClientConnectorError as exc:
            raise Unreachable(self.base_url, _reason(exc)) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Unreachable(self.base_url, str(exc) or type(exc).__name__) from None
        if response.status == 200:
            return response
        async with response:
            raise await _error_of(response)

    async def _text(
        self,
        route: str,
        body: bytes,
        conv_id: str | None = None,
        content_type: str = "text/plain; charset=utf-8",
        accept: str | None = None,
    ) -> str:
        async with await self._post(route, body, conv_id, content_type, accept) as response:
            return await _read_text(response)

    async def _answer(self, route: str, conv_id: str, body: bytes) -> AsyncGenerator[str, None]:
        """The answer's pieces as they arrive (one piece for a plain-text answer).
        Leaving early (Ctrl-C) closes the connection: the server then cancels the answer."""
        response = await self._post(route, body, conv_id)
        try:
            if response.content_type != "text/event-stream":
                yield await _read_text(response)
                return
            async for event in iter_events(response):
                if event.event == "error":
                    raise ServerError(event.data)
                if event.data == DONE:
                    return
                yield event.data
            raise ServerError("the answer broke off: the server ended the stream without [DONE]")
        except aiohttp.ClientPayloadError as exc:
            raise ServerError(f"the answer broke off: {exc}") from None
        finally:
            response.close()


async def _read_text(response: aiohttp.ClientResponse) -> str:
    try:
        return (await response.read()).decode("utf-8", "replace")
    except aiohttp.ClientPayloadError as exc:
        raise ServerError(f"the answer broke off: {exc}") from None


async def _error_of(response: aiohttp.ClientResponse) -> ChatError:
    message = (await _read_text(response)).strip()
    # 505 is what --compat-status servers answer for a bad token, as the Go original did.
    if response.status == 401 or message == AUTH_FAILED:
        return AuthRefused()
    if response.status in (404, 405) and not message.startswith(NOT_FOUND):
        return Fatal(
            f"{response.url} answered {response.status} {response.reason}: is this an alice-py server?"
        )
    if not message or response.content_type == "text/html":
        message = f"{response.status} {response.reason}"
    retry_after = response.headers.get("Retry-After")
    if response.status == 429 and retry_after:
        message = f"{message} (retry after {retry_after} s)"
    return ServerError(message, response.status)
