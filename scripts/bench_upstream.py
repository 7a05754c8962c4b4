"""The fake OpenAI upstream of the benchmark: canned answers and the nginx config serving them.

nginx answers ``POST`` with a static body (``return 200 '...'``), so the upstream costs a few
microseconds and the benchmark measures the service, not a Python fake. Each behaviour has its
own path prefix, so a service started with ``--base-url http://127.0.0.1:<port>/<prefix>/v1``
gets that behaviour for both ``/chat/completions`` and ``/completions``:

- ``fast``: a non-streaming chat completion JSON and a text completion JSON;
- ``sse``: the same answers as 20-chunk streams ending in ``data: [DONE]``;
- ``slow``: ``fast`` after ~200 ms (``echo_sleep`` of the echo module, which does not block nginx);
- ``slowsse``: ``sse`` with a pause between chunks (0.5 s), to hold streams open;
- ``trickle``: the same with a short pause (20 ms), to see the first piece arrive before the rest.

The service picks stream or not per conversation, so a workload chooses the prefix that matches
the requests it makes (W1, W3, W4 ``fast``; W2 ``sse``). Bodies may not contain ``'``, ``$`` or
``\\``: nginx would read them as quote, variable or escape.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MODEL = "gpt-4o-mini"
CHAT_ANSWER = (
    "Bench answer: the quick brown fox jumps over the lazy dog, and the service relays this "
    "sentence back to its client unchanged."
)
TEXT_ANSWER = "Bench text answer: a completion model wrote this line for the benchmark."
CHUNKS = 20
"""Pieces in a streamed answer."""
ECHO_MODULE = Path("/usr/share/nginx/modules/ngx_http_echo_module.so")


def stream_pieces(count: int = CHUNKS) -> list[str]:
    """The pieces of a streamed answer: ``p01 `` … ``p20 ``, so a client can check order and count."""
    return [f"p{i:02d} " for i in range(1, count + 1)]


def chat_json() -> str:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1700000000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": CHAT_ANSWER},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 20, "completion_tokens": 30, "total_tokens": 50},
        },
        separators=(",", ":"),
    )


def text_json() -> str:
    return json.dumps(
        {
            "id": "cmpl-bench",
            "object": "text_completion",
            "created": 1700000000,
            "model": MODEL,
            "choices": [{"index": 0, "text": TEXT_ANSWER, "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 15, "total_tokens": 35},
        },
        separators=(",", ":"),
    )


def _chat_chunk(index: int, piece: str, last: bool) -> str:
    delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if last else None}],
        },
        separators=(",", ":"),
    )


def _text_chunk(piece: str, last: bool) -> str:
    return json.dumps(
        {
            "id": "cmpl-bench",
            "object": "text_completion",
            "created": 1700000000,
            "model": MODEL,
            "choices": [{"index": 0, "text": piece, "finish_reason": "stop" if last else None}],
        },
        separators=(",", ":"),
    )


def sse_events(kind: str, count: int = CHUNKS) -> list[str]:
    """The events of a streamed answer (``chat`` or ``text``), each ``data: ...`` plus a blank line,
    the last one ``data: [DONE]``."""
    pieces = stream_pieces(count)
    last = len(pieces) - 1
    if kind == "chat":
        datas = [_chat_chunk(i, p, i == last) for i, p in enumerate(pieces)]
    else:
        datas = [_text_chunk(p, i == last) for i, p in enumerate(pieces)]
    return [f"data: {d}\n\n" for d in [*datas, "[DONE]"]]


@dataclass(frozen=True, slots=True)
class UpstreamTiming:
    slow_delay: float = 0.2
    """Seconds before the ``slow`` answer."""
    stream_interval: float = 0.5
    """Seconds between the chunks of a ``slowsse`` answer (held streams)."""
    trickle_interval: float = 0.02
    """Seconds between the chunks of a ``trickle`` answer (time to first byte)."""


def _quoted(body: str) -> str:
    for bad in ("'", "$", "\\"):
        if bad in body:
            raise ValueError(f"an nginx body cannot contain {bad!r}: {body[:60]}")
    return f"'{body}'"


def _static(path: str, content_type: str, body: str) -> str:
    return (
        f"    location = {path} {{\n      default_type {content_type};\n"
        f"      return 200 {_quoted(body)};\n    }}\n"
    )


def _slow(path: str, content_type: str, body: str, delay: float) -> str:
    return (
        f"    location = {path} {{\n      default_type {content_type};\n"
        f"      echo_sleep {delay:.3f};\n      echo -n {_quoted(body)};\n    }}\n"
    )


def _dribble(path: str, events: Sequence[str], interval: float) -> str:
    """Each event flushed on its own, with a pause before the next: a model typing slowly."""
    lines = [f"    location = {path} {{", "      default_type text/event-stream;"]
    for i, event in enumerate(events):
        if i:
            lines.append(f"      echo_sleep {interval:.3f};")
        lines.append(f"      echo -n {_quoted(event)};")
        lines.append("      echo_flush;")
    return "\n".join([*lines, "    }", ""])


def locations(timing: UpstreamTiming) -> str:
    chat_sse, text_sse = sse_events("chat"), sse_events("text")
    parts = [
        _static("/fast/v1/chat/completions", "application/json", chat_json()),
        _static("/fast/v1/completions", "application/json", text_json()),
        _static("/sse/v1/chat/completions", "text/event-stream", "".join(chat_sse)),
        _static("/sse/v1/completions", "text/event-stream", "".join(text_sse)),
        _slow("/slow/v1/chat/completions", "application/json", chat_json(), timing.slow_delay),
        _slow("/slow/v1/completions", "application/json", text_json(), timing.slow_delay),
        _dribble("/slowsse/v1/chat/completions", chat_sse, timing.stream_interval),
        _dribble("/slowsse/v1/completions", text_sse, timing.stream_interval),
        _dribble("/trickle/v1/chat/completions", chat_sse, timing.trickle_interval),
        _dribble("/trickle/v1/completions", text_sse, timing.trickle_interval),
    ]
    return "".join(parts)


def nginx_conf(root: Path, port: int, timing: UpstreamTiming, max_connections: int) -> str:
    """A complete nginx config that keeps every file under ``root`` and listens on loopback only."""
    return f"""load_module {ECHO_MODULE};
worker_processes 1;
worker_rlimit_nofile {max_connections * 2 + 64};
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections {max_connections + 64}; }}
http {{
  access_log off;
  server_tokens off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
{locations(timing)}    location / {{ return 404 '{{"error":{{"message":"no such bench route"}}}}'; }}
  }}
}}
"""
