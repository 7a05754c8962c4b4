"""An OpenAI-compatible HTTP client: chat and text completions, streaming and not.

One client per upstream, sending through the app's pooled ``aiohttp.ClientSession``
(keep-alive connections, DNS cache, TLS, the optional HTTP proxy). The key is an argument
of each call (the router picks it from the key pool).

Timeouts:

- ``connect_timeout``: the TCP/TLS connect only. There is no limit on connections,
  so no request waits for a free one.
- ``timeout`` is the deadline of a non-streaming call: the whole answer must arrive
  within it. For a stream it is the longest silence allowed, before the first byte
  and between chunks. A long answer that keeps arriving never times out.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
from collections.abc import AsyncGenerator, Mapping
from http import HTTPStatus
from typing import Any, Literal

import aiohttp
import orjson
from yarl import URL

from alice_py.upstream.connections import FreshConnections, PoolGuard, is_stale_connection
from alice_py.upstream.errors import (
    BROKE_OFF,
    KEY_INVALID,
    KEY_QUOTA,
    REPORTED_ERROR,
    UNREACHABLE,
    IncompleteStreamError,
    InvalidKeyError,
    QuotaExceededError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamRequestError,
    UpstreamServerError,
    UpstreamTimeoutError,
    server_failed,
)
from alice_py.upstream.keypool import mask_key
from alice_py.upstream.sse import Event, SSEDecoder
from alice_py.upstream.types import Endpoint, UpstreamRequest

DONE = "[DONE]"
USER_AGENT = "alice-py/0.1"
JSON = "application/json"
EVENT_STREAM = "text/event-stream"

_KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_\-]{12,}")
"""Something that looks like an OpenAI key, in case an upstream echoes a key we did not send."""


def scrub(message: str, key: str | None = None) -> str:
    """``message`` with ``key`` (and anything that looks like a key) masked."""
    if key:
        message = message.replace(key, mask_key(key))
    return _KEY_LIKE.sub(lambda match: mask_key(match.group(0)), message)


# ---- mapping an upstream's error answer to an UpstreamError ----------------------------------------


def _error_source(data: Any) -> dict[str, Any] | None:
    """The dict that holds an error's fields: OpenAI's ``{"error": {...}}``, or the top level
    for the looser shapes (``{"error": "text"}``, vLLM's ``{"object": "error", "message": ...}``)."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    return error if isinstance(error, dict) else data


def _error_fields(data: Any) -> tuple[str | None, str | None, str | None]:
    """(message, code as text, type) of an error answer, in any of the shapes above."""
    source = _error_source(data)
    if source is None:
        return None, None, None
    error = source.get("error")
    message = error if isinstance(error, str) else source.get("message")
    code, type_ = source.get("code"), source.get("type")
    return (
        message if isinstance(message, str) and message.strip() else None,
        str(code) if code is not None else None,
        str(type_) if isinstance(type_, str) else None,
    )


def _error_object(data: Any, key: str | None) -> dict[str, Any] | None:
    """The upstream's error object as it sent it (``param``, ``code`` of any JSON type, extra
    fields such as llama.cpp's ``n_ctx``), its texts scrubbed of keys; None for ``{"error": "text"}``."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        source = error
    elif data.get("object") == "error":
        source = {name: value for name, value in data.items() if name != "object"}
    else:
        return None
    return {name: scrub(value, key) if isinstance(value, str) else value for name, value in source.items()}


def _body_text(body: bytes) -> str | None:
    text = body.decode("utf-8", "replace").strip()
    return text or None


RESET_HEADERS = ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?"
)


def _duration(text: str) -> float | None:
    """OpenAI's ``x-ratelimit-reset-*`` values (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``) in seconds."""
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        with contextlib.suppress(ValueError):
            return max(float(text), 0.0)
        return None
    hours, minutes, seconds, millis = (float(part) if part else 0.0 for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), as openai-python;
    failing those, the longest of OpenAI's ``x-ratelimit-reset-requests`` / ``-tokens``."""
    lowered = {name.lower(): value for name, value in headers.items()}
    with contextlib.suppress(ValueError):
        if "retry-after-ms" in lowered:
            return max(float(lowered["retry-after-ms"]) / 1000, 0.0)
    value = lowered.get("retry-after")
    if not value:
        resets = [_duration(lowered[name]) for name in RESET_HEADERS if name in lowered]
        known = [seconds for seconds in resets if seconds is not None]
        return max(known) if known else None
    with contextlib.suppress(ValueError):
        return max(float(value), 0.0)
    with contextlib.suppress(ValueError, TypeError):
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    return None


KEY_REFUSED_CODES = frozenset({"invalid_api_key", "account_deactivated"})
"""Error codes that mean the key itself is refused, whatever the 4xx status (403 from some)."""


def _classify(
    status: int,
    shown: str,
    detail: str,
    fields: tuple[str | None, str | None, dict[str, Any] | None],
    retry_after: float | None,
    *,
    server_message: str,
) -> UpstreamError:
    """The error for ``status``: ``shown`` is the upstream's message (for 4xx the client
    sees it), ``detail`` the full text for the log; ``server_message`` what a 5xx shows."""
    code, type_, error_object = fields
    common: dict[str, Any] = {"detail": detail, "upstream_status": status, "code": code, "type": type_}
    if status == 401 or (400 <= status < 500 and KEY_REFUSED_CODES.intersection((code, type_))):
        return InvalidKeyError(KEY_INVALID, **common)
    if 400 <= status < 500 and "insufficient_quota" in (code, type_):
        return QuotaExceededError(KEY_QUOTA, **common)
    if status == 429:
        return UpstreamRateLimitError(shown, retry_after=retry_after, error_object=error_object, **common)
    if status >= 500:
        return UpstreamServerError(server_message, **common)
    if status >= 400:
        return UpstreamRequestError(shown, error_object=error_object, **common)
    return UpstreamError(shown, **common)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def error_from_response(
    status: int, body: bytes, headers: Mapping[str, str], *, key: str | None = None
) -> UpstreamError:
    """The UpstreamError for an HTTP error answer (``key`` masked out of every text).

    401 → InvalidKeyError; 429 with ``insufficient_quota`` → QuotaExceededError; other
    429 → UpstreamRateLimitError (``retry_after`` from the headers); 5xx →
    UpstreamServerError, whose message is only the status (the body, JSON or not, is its
    ``detail``, for the log); other 4xx → UpstreamRequestError with the upstream's message
    and error object.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    message, code, type_ = _error_fields(data)
    generic = f"The model API answered HTTP {status} {_reason(status)}"
    detail = scrub(message or _body_text(body) or generic, key)
    shown = scrub(message, key) if message else generic
    retry_after = _retry_after(headers) if status == 429 else None
    fields = (code, type_, _error_object(data, key))
    error = _classify(status, shown, detail, fields, retry_after, server_message=server_failed(status))
    error.upstream_request_id = headers.get("x-request-id")
    return error


_STREAM_ERROR_STATUS = {
    "invalid_api_key": 401,
    "authentication_error": 401,
    "insufficient_quota": 429,
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "invalid_request_error": 400,
}


def error_from_payload(data: str | bytes, *, key: str | None = None) -> UpstreamError:
    """The UpstreamError for an error sent with HTTP status 200: inside a stream
    (``{"error": {...}}`` data or ``event: error``), or as a whole answer by some gateways.
    The class follows the error's code or type; unknown ones count as a server error."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        parsed = None
    message, code, type_ = _error_fields(parsed)
    if parsed is None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        message = text.strip() or None
    status = _STREAM_ERROR_STATUS.get(code or "") or _STREAM_ERROR_STATUS.get(type_ or "") or 500
    text = scrub(message or "The model API reported an error in the middle of its answer", key)
    fields = (code, type_, _error_object(parsed, key))
    return _classify(status, text, text, fields, None, server_message=REPORTED_ERROR)


def _json_object(raw: bytes | str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamError("The model API sent a response that is not a JSON object")
    return data


def _not_a_stream(raw: bytes, key: str) -> UpstreamError:
    """The error for a JSON answer to a streaming request: some gateways send their errors
    that way with status 200; a server that ignores ``"stream": true`` is told apart."""
    data = _json_object(raw)
    if data.get("error") or data.get("object") == "error":
        return error_from_payload(raw, key=key)
    return UpstreamError("The model API answered without streaming, although a stream was asked for")


# ---- pulling the text out of responses ------------------------------------------------------------


def _first_choice(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    choices = data.get("choices")
    if not choices or not isinstance(choices, list):
        return None
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def _choice_text(endpoint: Endpoint, data: Mapping[str, Any], chat_field: str) -> str:
    """The first choice's ``<chat_field>.content`` (chat) or ``text`` (completion); ``""`` if none."""
    choices = data.get("choices")
    # The usual case (once per streamed token) without a call: choice 0 comes first.
    choice = choices[0] if type(choices) is list and choices else None
    if type(choice) is not dict or choice.get("index", 0) != 0:
        choice = _first_choice(data)
        if choice is None:
            return ""
    if endpoint == "chat":
        holder = choice.get(chat_field)
        content = holder.get("content") if isinstance(holder, dict) else None
    else:
        content = choice.get("text")
    return content if isinstance(content, str) else ""


def response_text(endpoint: Endpoint, response: Mapping[str, Any]) -> str:
    """The first choice's ``message.content`` (chat) or ``text`` (completion); ``""`` if none."""
    return _choice_text(endpoint, response, "message")


def chunk_text(endpoint: Endpoint, chunk: Mapping[str, Any]) -> str:
    """The first choice's ``delta.content`` (chat) or ``text`` (completion) of a stream chunk."""
    return _choice_text(endpoint, chunk, "delta")


def _read_events(events: list[Event], key: str) -> tuple[list[dict[str, Any]], bool, UpstreamError | None]:
    """The chunks of a burst of stream events; whether ``[DONE]`` was among them; the error
    sent instead of the next chunk, if one was."""
    batch: list[dict[str, Any]] = []
    for data, name, _ in events:
        if data == DONE:
            return batch, True, None
        if name == "error":
            return batch, False, error_from_payload(data, key=key)
        if not data:
            continue
        chunk = _json_object(data)
        if chunk.get("error") or chunk.get("object") == "error":
            return batch, False, error_from_payload(data, key=key)
        batch.append(chunk)
    return batch, False, None


def _finished(chunk: Mapping[str, Any]) -> bool:
    """Whether the chunk's first choice carries a ``finish_reason``."""
    choice = _first_choice(chunk)
    return choice is not None and choice.get("finish_reason") is not None


Burst = tuple[list[dict[str, Any]], bool, UpstreamError | None]
"""What one read of a stream gives: its chunks, whether ``[DONE]`` came, the error to raise
after the chunks (an error sent in the stream, or ``[DONE]`` without a ``finish_reason``)."""

_NOTHING: Burst = ([], False, None)

INCOMPLETE = (
    "The model API ended its answer without saying it was finished (no finish_reason): it was cut short"
)


class _ChunkReader:
    """A stream's bytes, read by read, as ``Burst``s. Never raises: it returns its error."""

    __slots__ = ("_decoder", "_key", "_unfinished", "ended")

    def __init__(self, key: str, require_finish_reason: bool) -> None:
        self._decoder = SSEDecoder()
        self._key = key
        self._unfinished = require_finish_reason
        """No chunk has had a ``finish_reason`` yet, and one is required."""
        self.ended = False
        """``[DONE]`` came."""

    def read(self, data: bytes) -> Burst:
        events = self._decoder.feed(data)
        if not events:
            return _NOTHING
        try:
            batch, done, error = _read_events(events, self._key)
        except UpstreamError as exc:
            return [], False, exc
        if self._unfinished:
            self._unfinished = not any(_finished(chunk) for chunk in batch)
        if done:
            self.ended = True
            if self._unfinished:
                error = IncompleteStreamError(INCOMPLETE)
        return batch, done, error


# ---- the client -----------------------------------------------------------------------------------

CONNECTION_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientError,)
"""What the session raises when the connection fails (besides ``TimeoutError``)."""


def is_connect_timeout(exc: TimeoutError) -> bool:
    return isinstance(exc, aiohttp.ConnectionTimeoutError)


def connection_error(exc: Exception, key: str) -> UpstreamConnectionError:
    """The client is told only whether the API could not be reached or broke off; the
    exception's text (it names the internal host and port) is the detail, for the log."""
    message = UNREACHABLE if isinstance(exc, aiohttp.ClientConnectorError) else BROKE_OFF
    detail = scrub(str(exc) or type(exc).__name__, key)
    return UpstreamConnectionError(message, detail=f"Connection to the model API failed: {detail}")


class _NetworkErrors:
    """``with client._network_errors(key, streaming=...)``: a class, not ``@contextmanager``,
    because it wraps every upstream call and a generator-based one costs several times more."""

    __slots__ = ("_client", "_key", "_streaming")

    def __init__(self, client: OpenAIClient, key: str, streaming: bool) -> None:
        self._client = client
        self._key = key
        self._streaming = streaming

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:
        if isinstance(exc, TimeoutError):
            raise self._client.timeout_error(exc, self._streaming) from exc
        if isinstance(exc, CONNECTION_ERRORS):
            raise connection_error(exc, self._key) from exc
        return False


class OpenAIClient:
    """Calls one OpenAI-compatible API at ``base_url`` (e.g. ``https://api.openai.com/v1``).

    Requests go through ``session`` (the app's aiohttp session, which the app closes), via
    ``proxy`` when one is configured.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        proxy: str | None = None,
        connect_timeout: float = 10.0,
        timeout: float = 300.0,
        require_finish_reason: bool = True,
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base
        self._urls: dict[str, URL] = {
            "chat": URL(f"{base}/chat/completions"),
            "completion": URL(f"{base}/completions"),
        }
        self._models_url = URL(f"{base}/models")
        self._session = session
        self._fresh = FreshConnections(trust_env=session.trust_env)
        self._require_finish_reason = require_finish_reason
        self._proxy = proxy or None
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._call_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=timeout
        )
        json_headers = {"Content-Type": JSON, "Accept": JSON, "User-Agent": USER_AGENT}
        self._headers = {False: json_headers, True: {**json_headers, "Accept": EVENT_STREAM}}

    def __repr__(self) -> str:
        return f"<OpenAIClient {self.base_url}>"

    async def close(self) -> None:
        """Close the connections of retries (``FreshConnections``); the session belongs to the
        app, which closes it."""
        await self._fresh.close()

    def timeout_error(self, exc: TimeoutError, streaming: bool) -> UpstreamTimeoutError:
        if is_connect_timeout(exc):
            limit = self._connect_timeout
            return UpstreamTimeoutError(f"Could not connect to the model API within {limit:g} s")
        if streaming:
            return UpstreamTimeoutError(f"The model API sent nothing for {self._timeout:g} s")
        return UpstreamTimeoutError(f"The model API did not answer within {self._timeout:g} s")

    def _network_errors(self, key: str, *, streaming: bool) -> _NetworkErrors:
        """Timeouts and connection failures as UpstreamTimeoutError / UpstreamConnectionError."""
        return _NetworkErrors(self, key, streaming)

    async def _send(
        self, method: str, url: URL, key: str, body: bytes | None, *, streaming: bool
    ) -> aiohttp.ClientResponse:
        """The response, once its status is known to be a success; else the mapped error.
        (Straight on the session: each layer here is paid on every call.)

        A request whose connection turned out dead before its answer's status came (a kept-alive
        connection the server had dropped) is sent once more on a new connection of its own.
        """
        headers = (
            {**self._headers[streaming], "Authorization": f"Bearer {key}"}
            if key
            else self._headers[streaming]
        )
        timeout = self._stream_timeout if streaming else self._call_timeout
        with self._network_errors(key, streaming=streaming):
            try:
                response = await self._session.request(
                    method, url, data=body, headers=headers, proxy=self._proxy, timeout=timeout
                )
            except aiohttp.ClientError as exc:
                if not is_stale_connection(exc):
                    raise
                response = await self._fresh.session().request(
                    method, url, data=body, headers=headers, proxy=self._proxy, timeout=timeout
                )
            if response.status < 400:
                return response
            try:
                raw = await response.read()
            except BaseException:
                response.close()
                raise
            response.release()
        raise error_from_response(response.status, raw, response.headers, key=key)

    async def _call_json(self, method: str, url: URL, key: str, body: bytes | None) -> dict[str, Any]:
        response = await self._send(method, url, key, body, streaming=False)
        try:
            with self._network_errors(key, streaming=False):
                raw = await response.read()
        except BaseException:
            response.close()
            raise
        response.release()
        data = _json_object(raw)
        if data.get("error") and "choices" not in data and "data" not in data:
            raise error_from_payload(raw, key=key)
        return data

    async def call(self, key: str, request: UpstreamRequest) -> dict[str, Any]:
        """One non-streaming request (``"stream": false``); the upstream's JSON response."""
        body = {**request.body, "stream": False}
        body.pop("stream_options", None)  # OpenAI rejects stream_options without stream
        return await self._call_json("POST", self._urls[request.endpoint], key, orjson.dumps(body))

    async def list_models(self, key: str) -> dict[str, Any]:
        """``GET {base_url}/models``."""
        return await self._call_json("GET", self._models_url, key, None)

    async def stream(self, key: str, request: UpstreamRequest) -> AsyncGenerator[dict[str, Any], None]:
        """One streaming request (``"stream": true``): each ``data:`` JSON object until ``[DONE]``
        (``stream_batches`` one by one)."""
        async with contextlib.aclosing(self.stream_batches(key, request)) as batches:
            async for batch in batches:
                for chunk in batch:
                    yield chunk

    async def stream_batches(
        self, key: str, request: UpstreamRequest
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """One streaming request: its ``data:`` JSON objects until ``[DONE]``, in batches of
        those that arrived together (one network read), so that a consumer can pass a burst
        on in one write.

        An error sent inside the stream raises its UpstreamError (after the chunks before it);
        a stream that ends without ``[DONE]`` or breaks raises UpstreamConnectionError, and
        one whose first choice never had a ``finish_reason`` IncompleteStreamError (unless
        ``require_finish_reason`` is off). The response is closed when the iteration stops for
        any reason, so a consumer that is cancelled or stops early closes the upstream
        connection at once; only a stream that reached ``[DONE]`` leaves its connection to the
        pool (``PoolGuard``).
        """
        body = orjson.dumps({**request.body, "stream": True})
        response = await self._send("POST", self._urls[request.endpoint], key, body, streaming=True)
        reader = _ChunkReader(key, self._require_finish_reason)
        guard = PoolGuard(response, reader.read, lambda: reader.ended)
        try:
            with self._network_errors(key, streaming=True):
                if response.content_type == "application/json":
                    raise _not_a_stream(await response.read(), key)
                async for data in response.content.iter_any():
                    batch, done, error = reader.read(data)
                    if batch:
                        yield batch
                    if error is not None:
                        raise error
                    if done:
                        return
                # What came with the end of the body, read by the guard as aiohttp pooled or closed.
                batch, done, error = guard.rest or _NOTHING
                if batch:
                    yield batch
                if error is not None:
                    raise error
                if done:
                    return
            raise UpstreamConnectionError("The model API stream ended before the answer was complete")
        finally:
            guard.stop()
            if reader.ended:
                response.release()  # back to the pool when fully read, else closed
            else:
                response.close()
