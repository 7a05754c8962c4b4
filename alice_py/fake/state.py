"""The fake upstream's switches and its record of what it received."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

FailureKind = Literal[
    "invalid_key",
    "quota",
    "rate_limit",
    "server_error",
    "bad_request",
    "context_overflow",
    "traceback",
    "plain_text_error",
    "failed_stream_reset",
    "reset_after_answer",
]
"""What ``FakeState.fail_next`` makes the next requests answer:
401 ``invalid_api_key``; 429 ``insufficient_quota``; 429 ``rate_limit_exceeded`` with
``Retry-After: <state.retry_after>``; 500 ``server_error``; 400 ``invalid_request_error``;
llama.cpp's 400 ``exceed_context_size_error`` (an integer ``code``, extra fields
``n_prompt_tokens`` and ``n_ctx``); llama-cpp-python's 500 whose message is a Python
traceback (file paths, an internal address); that traceback as a ``text/plain`` 500.

Two more misbehave on the connection instead (``CONNECTION_FAILURES``), as llama-cpp-python's
server does:

- ``failed_stream_reset``: a stream sends ``state.failed_stream_chunks`` chunks, then ends
  its chunked body cleanly with neither ``finish_reason`` nor ``[DONE]`` (a non-streamed
  request gets a 500 instead); the connection is kept alive, then reset (see ``reset_delay``).
- ``reset_after_answer``: a normal, complete answer; then the kept-alive connection is reset.

A connection so marked is reset (RST, no answer) when the next request arrives on it, or
``state.reset_delay`` seconds after the answer, whichever comes first; ``state.resets``
counts the requests that met such a reset."""

FAILURE_KINDS: tuple[FailureKind, ...] = get_args(FailureKind)
CONNECTION_FAILURES: frozenset[FailureKind] = frozenset({"failed_stream_reset", "reset_after_answer"})

KEY_TRIGGERS: tuple[tuple[str, FailureKind], ...] = (
    ("bad", "invalid_key"),
    ("noquota", "quota"),
    ("ratelimit", "rate_limit"),
    ("error5xx", "server_error"),
    ("streamreset", "failed_stream_reset"),
    ("idlereset", "reset_after_answer"),
)
"""A key containing the word fails every request the same way (checked in this order)."""

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo-instruct", "demo")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it. ``key`` is the Bearer token (None if absent);
    ``body`` the parsed JSON body (None if there was none or it was not JSON)."""

    method: str
    path: str
    key: str | None
    body: Any


@dataclass(slots=True)
class FakeState:
    """Switches a test flips, and what reached the fake. The switches stay set until changed.

    - ``delay``: seconds to wait before answering (headers included).
    - ``chunk_delay``: seconds between streamed chunks.
    - ``words_per_chunk``: words of the answer per streamed chunk.
    - ``break_stream_after``: send that many ``data:`` chunks, then cut the connection.
    - ``stream_error_after``: send that many chunks, then an error (``{"error": {...}}`` data,
      or ``event: error`` with ``stream_error_as_event``), and end the stream without ``[DONE]``.
    - ``omit_done``: end every stream cleanly but without ``data: [DONE]``.
    - ``omit_finish_reason``: no chunk (and no non-streamed answer) carries a ``finish_reason``
      (a server that never sends one).
    - ``interrupt_stream_after``: send that many chunks, then ``data: [DONE]`` with no
      ``finish_reason`` (llama-cpp-python's ``interrupt_requests``).
    - ``failed_stream_chunks``: the chunks a ``failed_stream_reset`` stream sends.
    - ``reset_delay``: seconds after which a connection marked for a reset is reset even if no
      request came; None: only when the next request arrives on it (what a test can rely on).
    - ``retry_after``: the ``Retry-After`` seconds of rate-limit answers.
    - ``context_window``: refuse a request whose prompt passes that many tokens as OpenAI does
      (400 ``context_length_exceeded``, "maximum context length is N tokens. However, your
      messages resulted in M tokens"); None: no limit. The fake counts a token per word
      (``answers.usage``) times ``tokens_per_word``: another tokenizer than the service's.
    - ``model_windows``: windows ``GET /v1/models`` reports, as vLLM does (``max_model_len``).

    ``requests`` holds what was received, oldest first (at least the last ``max_recorded``).
    """

    delay: float = 0.0
    chunk_delay: float = 0.0
    words_per_chunk: int = 1
    break_stream_after: int | None = None
    stream_error_after: int | None = None
    stream_error_as_event: bool = False
    omit_done: bool = False
    omit_finish_reason: bool = False
    interrupt_stream_after: int | None = None
    failed_stream_chunks: int = 2
    reset_delay: float | None = None
    retry_after: float = 7.0
    models: tuple[str, ...] = DEFAULT_MODELS
    context_window: int | None = None
    tokens_per_word: int = 1
    model_windows: dict[str, int] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    max_recorded: int = 1000
    disconnects: int = 0
    """Streams the client went away from before the end (the fake noticed on its next write)."""
    resets: int = 0
    """Requests that arrived on a connection marked for a reset, and were answered by one."""
    _failures: deque[FailureKind] = field(default_factory=deque)
    _served: int = 0

    def next_id(self) -> int:
        """A fresh number for a response id (``chatcmpl-demo-<n>``)."""
        self._served += 1
        return self._served

    def fail_next(self, kind: FailureKind, count: int = 1) -> None:
        """Make the next ``count`` model requests (chat or completion) fail with ``kind``."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; one of {', '.join(FAILURE_KINDS)}")
        self._failures.extend([kind] * count)

    def key_failure(self, key: str) -> FailureKind | None:
        """The failure a key's trigger word selects, if any."""
        for word, kind in KEY_TRIGGERS:
            if word in key:
                return kind
        return None

    def take_failure(self, key: str) -> FailureKind | None:
        """The failure this request must answer with: the key's trigger word, else a queued one."""
        kind = self.key_failure(key)
        if kind is None and self._failures:
            kind = self._failures.popleft()
        return kind

    def record(self, request: RecordedRequest) -> None:
        """Keep ``request``; only the last ``max_recorded`` are kept, so a long demo run stays small."""
        self.requests.append(request)
        if len(self.requests) > 2 * self.max_recorded:
            del self.requests[: -self.max_recorded]

    @property
    def keys_used(self) -> list[str | None]:
        """The key of each request received, in order."""
        return [request.key for request in self.requests]

    @property
    def last(self) -> RecordedRequest:
        """The last request received (IndexError if none)."""
        return self.requests[-1]
