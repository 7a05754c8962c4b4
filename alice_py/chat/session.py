"""One chat session: the current conversation, the commands, and what the user sees.

Everything here runs in the event loop; answers are printed piece by piece as they
arrive. Output the user asked for (answers, ``/context``, the share address) goes to
stdout; chatter (banner, notices) goes to stderr, and only in an interactive session,
so that ``echo hi | alice-py chat`` prints nothing but the answer. Errors go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TextIO, TypeVar

from alice_py.chat import ConvKind
from alice_py.chat.client import AliceClient, ChatError, Fatal, ServerError

T = TypeVar("T")

HELP = """\
/regenerate  a new answer to the last question
/rollback    take back the last question and its answer
/context     the conversation so far
/share       save the conversation and print its share address
/new         start a fresh conversation
/help        this list
/quit        leave (or Ctrl-D; Ctrl-C twice at the prompt)
Ctrl-C during an answer stops it. A line ending in \\ continues on the next line;
start a line with // to send a question that begins with /."""

BUSY_WAIT = 5.0
"""After a stopped answer, how long a new request waits for the server to notice and let go
of the conversation (it answers ``AI is thinking`` until then)."""
CLOSE_TIMEOUT = 3.0


class Console:
    """Where output goes. Used by one thread at a time (the loop while a request runs)."""

    def __init__(self, out: TextIO, err: TextIO, chatty: bool) -> None:
        self.out = out
        self.err = err
        self.chatty = chatty
        self._mid_answer = False

    def piece(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        self._mid_answer = True

    def end_answer(self) -> None:
        self._mid_answer = False
        self.out.write("\n")
        self.out.flush()

    def break_line(self) -> None:
        """End a half-printed answer, so that what follows starts on its own line."""
        if self._mid_answer:
            self.end_answer()

    def stopped(self) -> None:
        """After Ctrl-C stopped a request; the terminal has echoed ``^C`` wherever the cursor was."""
        self.end_answer()
        self.info("(stopped)")

    def show(self, text: str) -> None:
        self.break_line()
        self.out.write(text + "\n")
        self.out.flush()

    def info(self, text: str) -> None:
        if self.chatty:
            self.break_line()
            self.err.write(text + "\n")
            self.err.flush()

    def error(self, text: str) -> None:
        self.break_line()
        self.err.write(f"error: {text}\n")
        self.err.flush()


class ChatSession:
    def __init__(
        self,
        client: AliceClient,
        console: Console,
        kind: ConvKind = "turbo",
        prompt: str = "",
        busy_wait: float = BUSY_WAIT,
    ) -> None:
        self.client = client
        self.console = console
        self.kind = kind
        self.prompt = prompt
        self.busy_wait = busy_wait
        self.conv_id = ""
        self.failures = 0
        self._stopped = False
        self._commands: dict[str, Callable[[], Awaitable[None]]] = {
            "/regenerate": self.regenerate,
            "/rollback": self.rollback,
            "/context": self.context,
            "/share": self.share,
            "/new": self.new,
            "/help": self.help,
        }

    async def start(self) -> None:
        self.conv_id = await self.client.create(self.kind, self.prompt)

    async def close(self) -> None:
        """Free the conversation on the server (shares are kept) and the connections."""
        try:
            if self.conv_id:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self.client.finish(self.conv_id)
        except (ChatError, TimeoutError):
            pass  # it expires on the server on its own anyway
        finally:
            await self.client.close()

    def note_stopped(self) -> None:
        self._stopped = True

    async def handle(self, line: str) -> None:
        """A question or a command (``/quit`` is the caller's). Server errors are shown, and
        counted; ``Fatal`` ones propagate."""
        try:
            await self._dispatch(line)
        except Fatal:
            raise
        except ChatError as exc:
            self.failures += 1
            self.console.error(exc.message)

    async def _dispatch(self, line: str) -> None:
        if line.startswith("//"):
            await self.ask(line[1:])
        elif line.startswith("/"):
            command = self._commands.get(line.split()[0])
            if command is None:
                raise ChatError(f"unknown command {line.split()[0]}; /help lists the commands")
            await command()
        elif line.strip():
            await self.ask(line)

    async def ask(self, question: str) -> None:
        try:
            await self._print_answer(lambda: self.client.ask(self.conv_id, question))
        except ServerError as exc:
            if not exc.conversation_gone:
                raise
            self.console.info("the conversation expired on the server; starting a new one")
            await self.start()
            await self._print_answer(lambda: self.client.ask(self.conv_id, question))

    async def regenerate(self) -> None:
        await self._print_answer(lambda: self.client.regenerate(self.conv_id))

    async def rollback(self) -> None:
        self.console.show(await self._patiently(lambda: self.client.rollback(self.conv_id)))

    async def context(self) -> None:
        self.console.show(await self.client.context(self.conv_id))

    async def share(self) -> None:
        self.console.show(await self.client.share(self.conv_id))

    async def new(self) -> None:
        with contextlib.suppress(ServerError):
            await self.client.finish(self.conv_id)
        await self.start()
        self.console.info(f"new conversation {self.conv_id}")

    async def help(self) -> None:
        self.console.show(HELP)

    async def _print_answer(self, make: Callable[[], AsyncGenerator[str, None]]) -> None:
        async def once() -> None:
            pieces = make()
            async with contextlib.aclosing(pieces):
                async for piece in pieces:
                    self.console.piece(piece)
            self.console.end_answer()

        await self._patiently(once)

    async def _patiently(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``; right after a stopped answer, retried while the server is still busy with it.
        (A server notices a client gone only at its next write, so that may take a moment.)"""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.busy_wait if self._stopped else 0.0)
        self._stopped = False
        delay = 0.05
        while True:
            try:
                return await call()
            except ServerError as exc:
                if not exc.busy or loop.time() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
