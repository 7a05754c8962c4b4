"""``[context]``: every key read from the file and the environment, every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from alice_py import config
from alice_py.engine.presets import Kind
from alice_py.engine.tree import Conversation, Message
from alice_py.errors import ConfigError


def load(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> config.Config:
    path = tmp_path / "alice.toml"
    path.write_text(toml, encoding="utf-8")
    return config.load(str(path), env or {}, {"upstream": {"keys_file": str(tmp_path / "none.txt")}})


def test_context_keys_from_the_file_and_the_environment(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[context]\npolicy = "error"\nwindows = { "gpt-4o-mini" = 128000, "m" = 300 }\nreserve = 10\n'
        'default_encoding = "cl100k_base"\ndefault_window = 4096\n',
    )
    assert cfg.context == config.ContextConfig(
        "error", 4096, {"gpt-4o-mini": 128000, "m": 300}, 10, "cl100k_base"
    )
    from_env = load(tmp_path, "", {"ALICE_CONTEXT_WINDOWS": "m=300, llama=2048"})
    assert from_env.context.windows == {"m": 300, "llama": 2048}


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ('[context]\npolicy = "trim"\n', {}, "context policy must be one of drop_oldest, summarize, error"),
        ('[context]\nwindows = { m = "300" }\n', {}, "[context] windows must be a table of integers"),
        ("[context]\nwindows = { m = 0 }\n", {}, "context windows: m must be more than 0 tokens"),
        ("[context]\ndefault_window = 0\n", {}, "context default_window must be more than 0"),
        ("[context]\nreserve = -1\n", {}, "context reserve must be 0 or more"),
        ('[context]\ndefault_encoding = "p50k_base"\n', {}, "default_encoding must be one of o200k_base"),
        ("", {"ALICE_CONTEXT_WINDOWS": "m=big"}, "ALICE_CONTEXT_WINDOWS must be name=integer pairs"),
    ],
)
def test_context_mistakes_are_named(tmp_path: Path, toml: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml, env)
    assert message in str(info.value)


def test_usage_and_dropped_turns_survive_a_save() -> None:
    conv = Conversation("c", Kind.TURBO, "", "user", "assistant", "default", False, 1.0, 1.0)
    conv.add(Message("q", None, "user", "hi", 1.0))
    conv.leaf = "q"
    plain = Conversation.from_json(conv.to_json())
    assert plain.usage is None and plain.dropped == 0
    assert b"usage" not in conv.to_json()  # conversations without usage are saved as before
    conv.usage, conv.dropped = (120, 30), 2
    loaded = Conversation.from_json(conv.to_json())
    assert (loaded.usage, loaded.dropped) == ((120, 30), 2)
    forked = loaded.branch("q", 2.0)
    assert (forked.usage, forked.dropped) == (None, 0)  # a fork starts its own account
