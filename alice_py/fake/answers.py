"""The fake model: deterministic answers and OpenAI's exact response and chunk shapes.

The answer is a pure function of the request:

- chat: ``CHAT_PREFIX + <text of the last user message>``, newlines kept;
- completion: ``COMPLETION_PREFIX + <subject>``, where the subject is the last
  non-empty line of the prompt after dropping a final speaker-label line (``AI:``)
  and a leading ``Name: `` label. For Alice's transcript ``...\\nHuman: hi\\nAI: ``
  that is ``hi``.

Given function ``tools``, the chat model calls one instead (``tool_call``). Both are cut at
the first ``stop`` sequence, as the real API does; ``max_tokens``,
``temperature`` etc. are accepted and ignored. A stream splits the same text into
chunks of ``words_per_chunk`` words (each word keeps the whitespace after it), so
joining the deltas gives exactly the non-streamed answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

CHAT_PREFIX = "Demo answer (built-in demo model, not a real AI) to: "
COMPLETION_PREFIX = "Demo completion (built-in demo model, not a real AI) of: "
FINGERPRINT = "fp_alice_py_demo"

_PIECES = re.compile(r"\S+\s*|\s+")
_LABEL_LINE = re.compile(r"[^\s:][^:\n]{0,40}:")
_LEADING_LABEL = re.compile(r"[^\s:][^:\n]{0,40}: ")


def message_text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def last_user_message(messages: Any) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return message_text(message.get("content"))
    return ""


def prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        return prompt[0]
    return ""


def completion_subject(prompt: str) -> str:
    lines = [line.strip() for line in prompt.split("\n")]
    lines = [line for line in lines if line]
    if len(lines) > 1 and _LABEL_LINE.fullmatch(lines[-1]):
        lines.pop()
    subject = lines[-1] if lines else ""
    return _LEADING_LABEL.sub("", subject, count=1)


def _cut_at_stop(text: str, stop: Any) -> str:
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    cut = len(text)
    for word in stops:
        if isinstance(word, str) and word:
            found = text.find(word)
            if 0 <= found < cut:
                cut = found
    return text[:cut]


def _last_message(body: Mapping[str, Any]) -> dict[str, Any]:
    messages = body.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    return last if isinstance(last, dict) else {}


def chat_answer(body: Mapping[str, Any]) -> str:
    """To the last user message; right after a tool's result, to that result."""
    last = _last_message(body)
    asked = (
        message_text(last.get("content"))
        if last.get("role") == "tool"
        else last_user_message(body.get("messages"))
    )
    return _cut_at_stop(CHAT_PREFIX + asked, body.get("stop"))


def tool_call(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The call the demo model makes, if any: given function ``tools`` (and a ``tool_choice``
    other than ``none``) and the user's turn, it calls the chosen tool (default: the first) with
    ``{"text": <the user's message>}``; after a tool's result it answers in words."""
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict) and tool.get("function")]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none" or _last_message(body).get("role") != "user":
        return None
    name = tools[0]["function"].get("name", "")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name", name)
    arguments = json.dumps({"text": last_user_message(body.get("messages"))})
    return {
        "id": f"call_demo_{len(str(body.get('messages')))}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def completion_answer(body: Mapping[str, Any]) -> str:
    subject = completion_subject(prompt_text(body.get("prompt")))
    return _cut_at_stop(COMPLETION_PREFIX + subject, body.get("stop"))


def split_answer(text: str, words_per_chunk: int = 1) -> list[str]:
    """The streamed pieces of ``text``; ``"".join(split_answer(t, n)) == t``."""
    pieces = _PIECES.findall(text)
    size = max(words_per_chunk, 1)
    return ["".join(pieces[i : i + size]) for i in range(0, len(pieces), size)]


def usage(body: Mapping[str, Any], answer: str, tokens_per_word: int = 1) -> dict[str, int]:
    """Token counts, approximated by words (deterministic, good enough for a fake); the prompt's
    words count ``tokens_per_word`` each (a tokenizer that cuts finer)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        sent = " ".join(message_text(m.get("content")) for m in messages if isinstance(m, dict))
    else:
        sent = prompt_text(body.get("prompt"))
    prompt_tokens, completion_tokens = len(sent.split()) * tokens_per_word, len(answer.split())
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class Shape:
    """One response's constant fields, and the chat or completion objects built from them."""

    def __init__(self, chat: bool, response_id: str, created: int, model: str) -> None:
        self.chat = chat
        self.head = {"id": response_id, "object": "", "created": created, "model": model}

    def response(
        self, text: str, usage_: dict[str, int], finish: bool = True, call: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        finish_reason = ("tool_calls" if call else "stop") if finish else None
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
            if call is not None:
                message = {**message, "content": None, "tool_calls": [call]}
            choice: dict[str, Any] = {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
            return {
                **self.head,
                "object": "chat.completion",
                "choices": [choice],
                "usage": usage_,
                "system_fingerprint": FINGERPRINT,
            }
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}
        return {**self.head, "object": "text_completion", "choices": [choice], "usage": usage_}

    def _chunk(self, choices: list[dict[str, Any]], with_usage: bool) -> dict[str, Any]:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        chunk = {**self.head, "object": kind, "choices": choices}
        if self.chat:
            chunk["system_fingerprint"] = FINGERPRINT
        if with_usage:
            chunk["usage"] = None
        return chunk

    def chunks(
        self,
        pieces: list[str],
        usage_: dict[str, int],
        with_usage: bool,
        finish: bool = True,
        call: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """OpenAI's stream: (chat) a role chunk, one chunk per piece (or a tool call: its id
        and name, then its arguments in two pieces), a ``finish_reason`` chunk (left out
        unless ``finish``), and with ``stream_options.include_usage`` a last chunk with no
        choices."""
        if self.chat:
            role = {"role": "assistant", "content": "", "refusal": None}
            yield self._chunk([self._choice(role, None)], with_usage)
            if call is not None:
                yield from self._call_chunks(call, with_usage)
            for piece in pieces if call is None else []:
                yield self._chunk([self._choice({"content": piece}, None)], with_usage)
            if finish:
                yield self._chunk([self._choice({}, "tool_calls" if call else "stop")], with_usage)
        else:
            for piece in pieces:
                yield self._chunk([self._choice(piece, None)], with_usage)
            if finish:
                yield self._chunk([self._choice("", "stop")], with_usage)
        if with_usage:
            yield {**self._chunk([], False), "usage": usage_}

    def _call_chunks(self, call: dict[str, Any], with_usage: bool) -> Iterator[dict[str, Any]]:
        function, arguments = call["function"], call["function"]["arguments"]
        half = len(arguments) // 2
        head = {
            "index": 0,
            "id": call["id"],
            "type": "function",
            "function": {"name": function["name"], "arguments": ""},
        }
        yield self._chunk([self._choice({"tool_calls": [head]}, None)], with_usage)
        for piece in (arguments[:half], arguments[half:]):
            delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            yield self._chunk([self._choice(delta, None)], with_usage)

    def _choice(self, delta: dict[str, Any] | str, finish_reason: str | None) -> dict[str, Any]:
        if isinstance(delta, str):
            return {"text": delta, "index": 0, "logprobs": None, "finish_reason": finish_reason}
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
