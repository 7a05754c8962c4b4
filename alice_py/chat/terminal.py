"""The terminal side of ``alice-py chat``: reading lines, Ctrl-C, and the loop that ties them.

The main thread owns the terminal and the event loop runs in a thread of its own
(``Portal``). It is this way round because Python delivers signals to the main
thread only, and only there can Ctrl-C interrupt ``readline``: so Ctrl-C at the
prompt clears the line, as in a shell, and Ctrl-C during an answer cancels the
request's task in the loop, which closes the HTTP response (the server then
cancels the answer and leaves the conversation as it was).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import sys
import threading
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

from alice_py.chat.session import ChatSession, Console

T = TypeVar("T")

PROMPT = "> "
MORE = ". "
HISTORY_LENGTH = 1000
SHUTDOWN_TIMEOUT = 5.0


class Stopped(Exception):
    """The request was stopped with Ctrl-C."""


class Portal:
    """An event loop in a thread; ``call`` runs a coroutine there and waits for it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="alice-py-chat", daemon=True)
        # Touched only by the main thread (signal handlers run there too), so no lock.
        self._busy = False
        self._task: asyncio.Task[Any] | None = None
        self._stop_requested = False

    def __enter__(self) -> Portal:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            asyncio.run_coroutine_threadsafe(_cancel_all(), self._loop).result(SHUTDOWN_TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro``'s result. Raises ``Stopped`` if ``stop`` cancelled it; a KeyboardInterrupt
        cancels it, waits for it to wind down, and propagates."""
        finished: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def spawn() -> asyncio.Task[T]:
            task = asyncio.create_task(coro)
            task.add_done_callback(lambda _: finished.set_result(None))
            return task

        self._busy, self._stop_requested = True, False
        try:
            task = self._task = asyncio.run_coroutine_threadsafe(spawn(), self._loop).result()
            if self._stop_requested:
                self._cancel(task)
            try:
                finished.result()
            except KeyboardInterrupt:
                self._cancel(task)
                finished.result()
                raise
        finally:
            self._busy, self._task = False, None
        if task.cancelled():
            raise Stopped()
        return task.result()

    def stop(self) -> bool:
        """Cancel the call in progress; ``False`` if there is none."""
        if not self._busy:
            return False
        if self._task is None:
            self._stop_requested = True
        else:
            self._cancel(self._task)
        return True

    def _cancel(self, task: asyncio.Task[Any]) -> None:
        self._loop.call_soon_threadsafe(task.cancel)


async def _cancel_all() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextmanager
def ctrl_c_stops(portal: Portal) -> Iterator[None]:
    """While inside: Ctrl-C stops the request in progress, or else raises KeyboardInterrupt."""

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if not portal.stop():
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def history_path(environ: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/alice-py/history``, by default ``~/.local/share/alice-py/history``."""
    data_home = environ.get("XDG_DATA_HOME", "")
    if not data_home or not os.path.isabs(data_home):
        home = environ.get("HOME") or str(Path.home())
        data_home = os.path.join(home, ".local", "share")
    return Path(data_home) / "alice-py" / "history"


class LineReader:
    """Input lines. With a terminal: a prompt, line editing and a history file (``readline``);
    without one: just the lines. A line ending in a backslash continues on the next one."""

    def __init__(self, interactive: bool, history: Path | None, console: Console) -> None:
        self.interactive = interactive
        self.console = console
        self.history: Path | None = None
        if interactive and history is not None:
            self._load_history(history)

    def read(self) -> str:
        """The next line (several, joined with newlines, when continued); EOFError at the end."""
        parts: list[str] = []
        line = self._input(PROMPT)
        while line.endswith("\\"):
            parts.append(line[:-1])
            line = self._input(MORE)
        parts.append(line)
        return "\n".join(parts)

    def _input(self, prompt: str) -> str:
        if not self.interactive:
            return input()
        if sys.stdout.isatty():
            return input(prompt)
        # With stdout redirected, input() would write the prompt into the answers.
        sys.stderr.write(prompt)
        sys.stderr.flush()
        return input()

    def _load_history(self, path: Path) -> None:
        try:
            import readline
        except ImportError:
            return  # no line editing on this platform; input() still works
        readline.set_history_length(HISTORY_LENGTH)
        try:
            readline.read_history_file(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.console.info(f"not using the history file {path}: {exc.strerror}")
            return
        self.history = path

    def save_history(self) -> None:
        if self.history is None:
            return
        import readline

        try:
            # Questions are private: the folder and the file are the user's alone.
            self.history.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            readline.write_history_file(self.history)
            os.chmod(self.history, 0o600)
        except OSError as exc:
            self.console.info(f"not saving the history to {self.history}: {exc.strerror}")
            self.history = None


def converse(portal: Portal, session: ChatSession, reader: LineReader) -> None:
    """Read, answer, repeat, until /quit, end of input, or Ctrl-C twice in a row at the prompt
    (without a terminal, Ctrl-C ends it at once: KeyboardInterrupt)."""
    interrupts = 0
    while True:
        try:
            if not _turn(portal, session, reader):
                return
            interrupts = 0
        except KeyboardInterrupt:
            # At the prompt; or in the instant between two requests, where it counts the same.
            if not reader.interactive:
                raise
            interrupts += 1
            session.console.end_answer()
            if interrupts > 1:
                return
            session.console.info("(Ctrl-C again, Ctrl-D or /quit to leave)")


def _turn(portal: Portal, session: ChatSession, reader: LineReader) -> bool:
    """One line read and handled; ``False`` at the end."""
    try:
        line = reader.read()
    except EOFError:
        if reader.interactive:
            session.console.end_answer()  # the shell's prompt then starts on a line of its own
        return False
    reader.save_history()  # now, not at exit: a closed terminal window ends us with SIGHUP
    if line.strip() == "/quit":
        return False
    try:
        portal.call(session.handle(line))
    except Stopped:
        session.note_stopped()
        session.console.stopped()
    return True
