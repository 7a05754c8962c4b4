"""Running ``alice-py chat`` as a user would: a subprocess with piped input, or on a terminal."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import clean_env

TIMEOUT = 20.0


@dataclass(frozen=True)
class ChatResult:
    returncode: int
    stdout: str
    stderr: str


def chat_env(home: Path) -> dict[str, str]:
    """No ALICE_* settings; history and anything else under ``home``, never the developer's."""
    return clean_env(HOME=str(home), XDG_DATA_HOME=str(home / "data"))


async def start_chat(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    """The client as a subprocess, its three streams piped. Async, so that a server under test
    keeps running in this loop."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alice_py", "chat", *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def run_chat(args: list[str], stdin: str, env: dict[str, str]) -> ChatResult:
    proc = await start_chat(args, env)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), TIMEOUT)
    assert proc.returncode is not None
    return ChatResult(proc.returncode, out.decode(), err.decode())


class Terminal:
    """``alice-py chat`` on a pseudo-terminal of its own (its controlling terminal, so the
    line discipline turns a typed Ctrl-C into SIGINT, as in a real terminal)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.execve(sys.executable, [sys.executable, "-m", "alice_py", "chat", *args], env)
        self.seen = ""
        self._pending = ""

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """Everything printed up to and including the first match of ``pattern`` (a regex)
        after what earlier calls consumed."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while (match := regex.search(self._pending)) is None:
            left = deadline - time.monotonic()
            readable, _, _ = select.select([self.fd], [], [], max(left, 0))
            if not readable:
                raise AssertionError(f"no {pattern!r} within {timeout} s; the screen shows {self._pending!r}")
            chunk = self._read()
            if not chunk:
                raise AssertionError(f"the program ended before {pattern!r}; it printed {self._pending!r}")
            self._pending += chunk
        taken, self._pending = self._pending[: match.end()], self._pending[match.end():]
        self.seen += taken
        return taken

    def _read(self) -> str:
        try:
            return os.read(self.fd, 4096).decode("utf-8", "replace")
        except OSError:  # EIO: the child closed the terminal
            return ""

    def wait(self, timeout: float = TIMEOUT) -> int:
        """The exit status, after reading what is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._pending += self._drain()
                return os.waitstatus_to_exitcode(status)
            if select.select([self.fd], [], [], 0.05)[0]:
                self._pending += self._read()
        raise AssertionError(f"still running after {timeout} s; it printed {self._pending!r}")

    def _drain(self) -> str:
        text = ""
        while select.select([self.fd], [], [], 0)[0] and (chunk := self._read()):
            text += chunk
        return text

    @property
    def rest(self) -> str:
        return self._pending

    def close(self) -> None:
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)
