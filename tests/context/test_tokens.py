"""Token counts: the shipped encodings, checked against tiktoken's own figures, offline."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tiktoken

from alice_py.engine import tokens
from alice_py.engine.tokens import TokenCounter, encoding_for_model

# Counts tiktoken 0.14 gives with the files downloaded from openaipublic (encode_ordinary).
KNOWN = [
    ("o200k_base", "hello world", 2),
    ("o200k_base", "Bonjour, ça va ? 日本語のテキスト", 11),
    ("o200k_base", "tiktoken is great!\n\n  def f(x):\n    return x**2", 16),
    ("o200k_base", " <|endoftext|> x", 8),
    ("cl100k_base", "hello world", 2),
    ("cl100k_base", "Bonjour, ça va ? 日本語のテキスト", 13),
    ("cl100k_base", " <|endoftext|> x", 7),
]


@pytest.mark.parametrize(("name", "text", "count"), KNOWN)
def test_counts_match_tiktoken_for_known_strings(name: str, text: str, count: int) -> None:
    assert TokenCounter().text(name, text) == count


def test_the_shipped_files_are_the_published_ones() -> None:
    for name, spec in tokens.SPECS.items():
        data = Path(tokens.encoding_file(name)).read_bytes()
        assert hashlib.sha256(data).hexdigest() == spec.sha256


def test_the_encoding_equals_tiktokens_own(tmp_path: Path) -> None:
    """tiktoken's registry, fed the shipped files through its cache, encodes exactly alike."""
    for name in tokens.SPECS:
        url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
        shutil.copy(tokens.encoding_file(name), tmp_path / hashlib.sha1(url.encode()).hexdigest())
    script = (
        "import tiktoken, sys\n"
        "from alice_py.engine import tokens\n"
        "text = open(sys.argv[1], encoding='utf-8').read()\n"
        "for name in tokens.SPECS:\n"
        "    ours, theirs = tokens.encoding(name), tiktoken.get_encoding(name)\n"
        "    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text), name\n"
        "    assert ours._pat_str == theirs._pat_str and ours._special_tokens == theirs._special_tokens\n"
        "print('same')\n"
    )
    sample = tmp_path / "sample.txt"
    sample.write_text(
        Path(tokens.__file__).read_text(encoding="utf-8") + "Ünïcödé 漢字 🎉 'll 're 123456", "utf-8"
    )
    env = {"TIKTOKEN_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(sample)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "same", done.stderr


def test_nothing_is_downloaded(tmp_path: Path) -> None:
    """No network and an empty tiktoken cache: both encodings load and count."""
    script = (
        "import socket\n"
        "def refuse(*args, **kwargs): raise OSError('no network in this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from alice_py.engine.tokens import TokenCounter\n"
        "counter = TokenCounter()\n"
        "print(counter.text('o200k_base', 'hello world'), counter.text('cl100k_base', 'hello world'))\n"
    )
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    env = {"TIKTOKEN_CACHE_DIR": str(cache), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["2", "2"], done.stderr


def test_a_damaged_encoding_file_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    damaged = tmp_path / "cl100k_base.tiktoken"
    data = bytearray(Path(tokens.encoding_file("cl100k_base")).read_bytes())
    data[10] ^= 1
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(tokens, "encoding_file", lambda name: str(damaged))
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="Hash mismatch"):
        tokens.encoding("cl100k_base")


def test_chat_messages_carry_the_formats_overhead() -> None:
    counter = TokenCounter()
    messages = [{"role": "system", "content": "hello world"}, {"role": "user", "content": "hello world"}]
    # 3 for the reply's priming, then per message: 3 + the role (one token) + the content (2).
    assert counter.messages("o200k_base", messages) == 3 + (3 + 1 + 2) * 2
    enc = tiktoken.Encoding  # the type is tiktoken's own
    assert isinstance(tokens.encoding("o200k_base"), enc)


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-instruct", "cl100k_base"),
        ("llama-3-8b", "default"),
        ("text-davinci-003", "default"),  # p50k_base: not shipped, the default counts
    ],
)
def test_encoding_per_model(model: str, encoding: str) -> None:
    assert encoding_for_model(model, "default") == encoding
