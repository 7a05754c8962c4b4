"""``alice-py chat`` against the real ``alice-py serve`` process: piped, and on a terminal.

The terminal tests use a slow model (``python -m alice_py.fake --chunk-delay``) so that an
answer is still arriving when the user presses Ctrl-C.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alice_py.fake import CHAT_PREFIX
from tests.chat_cli.helpers import Terminal, chat_env
from tests.support import clean_env, free_port, running_server

CHUNK_DELAY = 0.05
LONG_QUESTION = " ".join(f"w{n}" for n in range(1, 41))  # about 2.5 s of answer at CHUNK_DELAY


def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the fake upstream exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real service, relaying to the fake model run as its own process, answering slowly."""
    work = tmp_path_factory.mktemp("slow")
    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "alice_py.fake", "--port", str(port), "--chunk-delay", str(CHUNK_DELAY)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for_port(port, fake)
        args = ["--base-url", f"http://127.0.0.1:{port}/v1", "--db", f"sqlite+aiosqlite:///{work / 'a.db'}"]
        env = clean_env(OPENAI_API_KEY="sk-test-0000000000009999")
        with running_server(args, cwd=work, env=env) as (url, _proc):
            yield url
    finally:
        fake.terminate()
        fake.wait(timeout=10)


def settle() -> None:
    """A moment for readline to start waiting after it drew the prompt. A Ctrl-C that lands in
    the microseconds before is only seen after the next Enter (so with Python's own REPL); a
    person cannot hit that gap, a test writing at once can."""
    time.sleep(0.1)


@pytest.fixture
def terminal_env(tmp_path: Path) -> dict[str, str]:
    # A dumb terminal: readline draws with plain characters, no escape sequences to match around.
    return {**chat_env(tmp_path), "TERM": "dumb"}


@pytest.fixture
def open_terminal(slow_server: str, terminal_env: dict[str, str]) -> Iterator[Callable[[], Terminal]]:
    """``open_terminal()``: a new ``alice-py chat`` on a terminal; all are closed at the end."""
    opened: list[Terminal] = []

    def open_one() -> Terminal:
        opened.append(Terminal(["--url", slow_server], terminal_env))
        return opened[-1]

    yield open_one
    for term in opened:
        term.close()


def test_piped_question_to_the_demo_server(tmp_path: Path) -> None:
    with running_server(["--demo", "--db", f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"], cwd=tmp_path) as (
        url,
        _proc,
    ):
        result = subprocess.run(
            [sys.executable, "-m", "alice_py", "chat", "--url", url],
            input="hi\n",
            capture_output=True,
            text=True,
            env=chat_env(tmp_path),
            timeout=30,
            check=False,
        )
    assert (result.returncode, result.stdout, result.stderr) == (0, CHAT_PREFIX + "hi\n", "")


def test_ctrl_c_stops_the_answer_and_the_session_goes_on(open_terminal: Callable[[], Terminal]) -> None:
    term = open_terminal()
    assert "(turbo)" in term.expect(r"/quit or Ctrl-D leaves")
    term.expect("> ")
    term.send(LONG_QUESTION + "\r")
    term.expect("to: w1 w2 ")  # the answer is arriving piece by piece
    term.send("\x03")
    after_ctrl_c = term.expect(r"\(stopped\)\r\n> ")
    assert "w40" not in after_ctrl_c  # the rest of the answer never came
    # The server forgot the stopped question, as it does for any stream the client leaves.
    term.send("/context\r")
    assert "w1" not in term.expect("> ")
    term.send("next question\r")
    term.expect("to: next question\r\n> ")
    term.send("/quit\r")
    assert term.wait() == 0


def test_ctrl_c_at_the_prompt_clears_the_line_and_twice_leaves(open_terminal: Callable[[], Terminal]) -> None:
    term = open_terminal()
    term.expect("> ")
    term.send("abandoned")
    term.expect("abandoned")
    settle()  # the prompt must be reading keys (under load it may not be yet) when Ctrl-C comes
    term.send("\x03")
    term.expect(r"\(Ctrl-C again, Ctrl-D or /quit to leave\)\r\n> ")
    term.send("kept\r")
    term.expect(r"to: \w+")
    assert term.expect("\r\n> ") == "\r\n> "  # the question was "kept", not "abandonedkept"
    settle()
    term.send("\x03")
    term.expect("leave\\)\r\n> ")
    settle()
    term.send("\x03")
    assert term.wait() == 0


def test_history_survives_the_session_and_stays_private(
    open_terminal: Callable[[], Terminal], tmp_path: Path
) -> None:
    term = open_terminal()
    term.expect("> ")
    term.send("remember me\r")
    term.expect("to: remember me\r\n> ")
    term.send("\x04")  # Ctrl-D
    assert term.wait() == 0
    history = tmp_path / "data" / "alice-py" / "history"
    assert "remember me" in history.read_text()
    assert stat.S_IMODE(os.stat(history).st_mode) == 0o600

    again = open_terminal()
    again.expect("> ")
    again.send("\x10\r")  # Ctrl-P: the previous line, from the last session
    again.expect("to: remember me\r\n> ")
    again.send("/quit\r")
    assert again.wait() == 0
