"""Token counts, offline: tiktoken with its encoding files shipped in this package.

tiktoken downloads ``o200k_base.tiktoken`` / ``cl100k_base.tiktoken`` on first use unless
they are cached. Here they live in ``alice_py/engine/encodings`` (taken from PyPI packages
that ship them) and are read through tiktoken's own loader, ``load_tiktoken_bpe``, with the
sha256 tiktoken itself publishes for each file: a damaged file fails loudly, nothing is
fetched. The pattern and special tokens are tiktoken's (``tiktoken_ext.openai_public``);
only they are copied here because tiktoken's constructors would download the files.

Chat requests are counted as OpenAI documents it (the cookbook's ``num_tokens_from_messages``):
3 tokens per message for the format, the role and the content, and 3 for the reply's priming.
A completion request is the length of its prompt.

Counting is the hot part: a conversation's messages are counted again on every turn. A
message's count is kept by (encoding, text) in a bounded dict; the text's hash is cached on
the string itself, so a repeat costs one dict lookup.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import tiktoken
import tiktoken.model
from tiktoken.load import load_tiktoken_bpe

from alice_py.config import CONTEXT_ENCODINGS

PER_MESSAGE = 3
"""``<|start|>{role}\\n{content}<|end|>\\n``: the chat format's tokens around each message."""
REPLY_PRIMING = 3
"""``<|start|>assistant<|message|>``: every reply is primed with these."""

_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True, slots=True)
class _Spec:
    sha256: str
    """As tiktoken publishes it (``tiktoken_ext/openai_public.py``, ``expected_hash``)."""
    pat_str: str
    special_tokens: Mapping[str, int]


_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

SPECS: Mapping[str, _Spec] = {
    "o200k_base": _Spec(
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PATTERN,
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
    "cl100k_base": _Spec(
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
        r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
}
"""The encodings shipped: those of OpenAI's chat models (gpt-4o/4.1/5/o-series, gpt-3.5/4)."""

ENCODING_NAMES = tuple(SPECS)
assert ENCODING_NAMES == CONTEXT_ENCODINGS, "config.CONTEXT_ENCODINGS lists the encodings shipped"

_loaded: dict[str, tiktoken.Encoding] = {}
_loading = threading.Lock()


def encoding_file(name: str) -> str:
    return str(files("alice_py.engine").joinpath("encodings", f"{name}.tiktoken"))


def encoding(name: str) -> tiktoken.Encoding:
    """The encoding ``name`` (one of ``ENCODING_NAMES``), loaded once (about 0.5 s for o200k)."""
    found = _loaded.get(name)
    if found is not None:
        return found
    spec = SPECS[name]
    with _loading:
        if name not in _loaded:
            ranks = load_tiktoken_bpe(encoding_file(name), expected_hash=spec.sha256)
            _loaded[name] = tiktoken.Encoding(
                name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=dict(spec.special_tokens)
            )
    return _loaded[name]


@functools.lru_cache(maxsize=1024)
def encoding_for_model(model: str, default: str) -> str:
    """tiktoken's encoding for an OpenAI model name (``gpt-4o-mini`` → o200k_base), when it is
    one shipped here; ``default`` for any other model (a local or another vendor's one)."""
    try:
        name = tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        return default
    return name if name in SPECS else default


class TokenCounter:
    """Counts with a cache of text counts, one plain dict per encoding.

    A plain dict, not an LRU: a hit is one C-level lookup (an LRU's bookkeeping cost ten times
    the count it saves on a short message). Bounded all the same: past ``cache_size`` texts
    the dict starts afresh, and live conversations fill it again one turn each."""

    def __init__(self, cache_size: int = 200_000) -> None:
        self._cache_size = cache_size
        self._caches: dict[str, dict[str, int]] = {}

    def text(self, encoding_name: str, text: str) -> int:
        cache = self._caches.get(encoding_name)
        if cache is None:
            cache = self._caches[encoding_name] = {}
        count = cache.get(text)
        if count is None:
            count = len(encoding(encoding_name).encode_ordinary(text)) if text else 0
            if len(cache) >= self._cache_size:
                cache.clear()
            cache[text] = count
        return count

    def message(self, encoding_name: str, role: str, content: str) -> int:
        """One chat message with the format's overhead (role names are one token each)."""
        return PER_MESSAGE + self.text(encoding_name, role) + self.text(encoding_name, content)

    def messages(self, encoding_name: str, messages: Iterable[Mapping[str, Any]]) -> int:
        """A chat request's ``messages``, the reply priming included."""
        total = REPLY_PRIMING
        for message in messages:
            content = message.get("content")
            text = content if isinstance(content, str) else ""
            total += self.message(encoding_name, str(message.get("role", "")), text)
        return total
