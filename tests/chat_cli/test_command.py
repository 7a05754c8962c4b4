"""``chat`` is one of the ``alice-py`` commands, and says how to use it."""

from __future__ import annotations

from pathlib import Path

from tests.chat_cli.helpers import chat_env
from tests.support import run_cli


def test_alice_py_help_lists_chat(tmp_path: Path) -> None:
    result = run_cli(["--help"], cwd=tmp_path, env=chat_env(tmp_path))
    assert result.returncode == 0
    assert "chat" in result.stdout and "talk to a running alice-py server" in result.stdout


def test_chat_help_names_every_flag(tmp_path: Path) -> None:
    result = run_cli(["chat", "--help"], cwd=tmp_path, env=chat_env(tmp_path))
    assert result.returncode == 0
    for flag in ("--url", "--token", "--auth {simple,normal,none}", "--kind {turbo,gpt4,gpt3}", "--prompt"):
        assert flag in result.stdout
