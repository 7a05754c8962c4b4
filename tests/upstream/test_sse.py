"""The SSE decoder against the WHATWG event-stream rules, fed in every possible split."""

from __future__ import annotations

import pytest

from alice_py.upstream.sse import Event, SSEDecoder


def decode(*chunks: bytes) -> list[Event]:
    decoder = SSEDecoder()
    events: list[Event] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


def every_split(stream: bytes) -> list[list[Event]]:
    """The events of ``stream`` fed byte by byte, and split in two at every position."""
    results = [decode(*(stream[i : i + 1] for i in range(len(stream))))]
    results.extend(decode(stream[:cut], stream[cut:]) for cut in range(len(stream) + 1))
    return results


def test_one_event() -> None:
    assert decode(b"data: hello\n\n") == [Event("hello")]


def test_events_dispatched_on_blank_line_only() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [Event("a")]


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_line_ends(end: bytes) -> None:
    stream = b"data: a" + end + b"data: b" + end + end + b"data: c" + end + end
    for events in every_split(stream):
        assert events == [Event("a\nb"), Event("c")]


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    assert decode(b"data: a\r", b"\ndata: b\r\n\r\n") == [Event("a\nb")]
    assert decode(b"data: a\r", b"", b"\n", b"data: b\r\n\r\n") == [Event("a\nb")]


def test_mixed_line_ends() -> None:
    for events in every_split(b"data: a\r\ndata: b\rdata: c\n\r\n"):
        assert events == [Event("a\nb\nc")]


def test_comments_are_ignored() -> None:
    assert decode(b": keep-alive\n\n:another\ndata: x\n: inside\n\n") == [Event("x")]


def test_multi_line_data_joined_with_newline() -> None:
    assert decode(b"data: line 1\ndata:\ndata: line 3\n\n") == [Event("line 1\n\nline 3")]


def test_only_one_space_after_colon_is_dropped() -> None:
    assert decode(b"data:x\n\ndata:  y\n\n") == [Event("x"), Event(" y")]


def test_field_without_colon_has_empty_value() -> None:
    assert decode(b"data\n\n") == [Event("")]


def test_event_type_resets_after_each_event() -> None:
    events = decode(b"event: error\ndata: {}\n\ndata: next\n\n")
    assert events == [Event("{}", event="error"), Event("next", event="message")]


def test_id_carries_over_and_nul_id_is_ignored() -> None:
    events = decode(b"id: 7\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\n")
    assert [(e.data, e.id) for e in events] == [("a", "7"), ("b", "7"), ("c", "7"), ("d", "")]


def test_retry_only_when_all_digits() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 1500\n\n")
    assert decoder.retry == 1500
    decoder.feed(b"retry: 2s\n\nretry:\n\n")
    assert decoder.retry == 1500


def test_unknown_fields_ignored() -> None:
    assert decode(b"foo: bar\ndata: x\n\n") == [Event("x")]


def test_block_without_data_is_not_dispatched_and_clears_event_type() -> None:
    assert decode(b"event: ping\n\ndata: x\n\n") == [Event("x", event="message")]


def test_incomplete_event_at_end_is_not_dispatched() -> None:
    assert decode(b"data: done\n\ndata: cut off\n") == [Event("done")]


def test_utf8_split_inside_a_character() -> None:
    stream = "data: 你好，世界 🌍\n\n".encode()
    for events in every_split(stream):
        assert events == [Event("你好，世界 🌍")]


def test_leading_bom_is_stripped_even_when_split() -> None:
    for events in every_split(b"\xef\xbb\xbfdata: a\n\n"):
        assert events == [Event("a")]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert decode(b"data: \xff ok\n\n") == [Event("\ufffd ok")]


def test_openai_style_stream_in_arbitrary_chunks() -> None:
    stream = b'data: {"a": 1}\n\ndata: {"b": "x\\ny"}\n\ndata: [DONE]\n\n'
    for events in every_split(stream):
        assert [e.data for e in events] == ['{"a": 1}', '{"b": "x\\ny"}', "[DONE]"]
