"""Running the app: the event loop, the listening socket, the start-up lines, graceful shutdown.

Start-up runs in this order: the config is parsed (``cli``), the listening sockets are
bound (``listen``), then the app's resources open (database, migrations, saved
conversations: ``app.cleanup_ctx``), then it serves. A port already in use therefore
ends the process with one line before any data is touched: a second instance must not
open the running one's database, let alone "resume" and save its conversations.

On SIGTERM or SIGINT the service stops like this (``run``):

1. it stops listening and closes idle keep-alive connections (busy ones close after
   their response), so no new request gets in;
2. requests in progress, streams included, get ``[server] drain_timeout`` seconds to
   finish (a second signal stops waiting);
3. those still running are cancelled, and awaited: the engine leaves their
   conversations as they were before the request;
4. only then the app is cleaned up, whose first step saves every live conversation.

``web.run_app`` is not used because of what aiohttp does there (read in 3.14.5 and tried;
``RequestHandler.shutdown`` has the same shape since 3.9): it waits ``shutdown_timeout``
for a handler, then ``shutdown_timeout`` again, then cancels it without waiting for it
to end before the cleanup runs; and a second signal during that wait skips the cleanup
(no save) and exits with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import gc
import logging
import os
import signal
import socket
import sys
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from alice_py import __version__, appkeys
from alice_py.app import create_app
from alice_py.config import Config, mask_url
from alice_py.errors import ConfigError
from alice_py.exposure import open_doors
from alice_py.supervisor import START_FAILED, Supervisor
from alice_py.web import accesslog

log = logging.getLogger("alice_py")

CANCEL_GRACE = 5.0
"""Seconds cancelled requests get to unwind (release locks, close upstream streams)."""
CLOSE_TIMEOUT = 5.0
"""aiohttp's own wait for connections at cleanup; nothing is in progress by then."""
KEEPALIVE_TIMEOUT = 75.0
BACKLOG = 4096
"""A deep accept queue: thousands of clients connecting at once must not be dropped by the kernel."""
GC_THRESHOLDS = (50_000, 20, 100)
"""The cycle collector's thresholds once serving (Python's defaults: 700, 10, 10).

A service allocates a great many short-lived objects per request and makes few reference
cycles, while every collection walks the live conversations again: with the defaults, W3
spent over a tenth of its CPU in the collector (docs/performance.md). Cycles are still
collected, just in larger, rarer batches."""


def startup_lines(cfg: Config) -> list[str]:
    lines = [f"alice-py {__version__} starting on http://{cfg.server.host}:{cfg.server.port}"]
    if cfg.upstream.demo:
        lines.append("answers come from the built-in demo model (no API key, no network needed)")
    elif not cfg.upstreams:
        lines.append(f"upstream {cfg.upstream.base_url} with {len(cfg.upstream.keys)} key(s)")
    else:
        for entry in cfg.upstreams:
            lines.append(
                f"upstream {entry.name} {entry.base_url} with {len(entry.keys)} key(s), "
                f"models {', '.join(entry.models)}, priority {entry.priority}"
            )
    auth = f"auth {cfg.auth.mode}"
    if cfg.upstream.demo and cfg.auth.mode == "none":
        auth += " (--demo with no secret set: --token or --auth require one)"
    lines.append(f"{auth}, database {mask_url(cfg.database.url)}")
    return lines


def listen(host: str, port: int) -> list[socket.socket]:
    """The listening sockets for ``host:port``, one per address it resolves to (as asyncio's
    ``create_server`` makes them), bound and listening before anything else starts.
    ``ConfigError`` naming the address when the port is taken or the address unusable."""
    sockets: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix" and sys.platform != "cygwin":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restarts need no wait
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is already in use") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sockets


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed: its sockets and timers are several times cheaper."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class InFlight:
    """The requests being handled, so that shutdown can wait for them and cancel the rest."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return sum(1 for task in self._tasks if not task.done())

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # The task also writes the response after the handler returns: waiting on the
        # task, not on this call, waits until the client has the whole answer.
        task = asyncio.current_task()
        if task is not None and task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await handler(request)

    async def drain(self, limit: float, hurry: asyncio.Event) -> None:
        """Wait up to ``limit`` seconds (or until ``hurry`` is set) for every request; cancel the rest."""
        if self._tasks:
            log.info("waiting up to %gs for %d request(s) in progress", limit, len(self))
            await _wait_for_all(set(self._tasks), limit, hurry)
        left = [task for task in self._tasks if not task.done()]
        if not left:
            return
        log.warning("cancelling %d request(s) still in progress", len(left))
        for task in left:
            task.cancel()
        _, stuck = await asyncio.wait(left, timeout=CANCEL_GRACE)
        if stuck:
            log.error("%d cancelled request(s) did not end within %gs", len(stuck), CANCEL_GRACE)


async def _wait_for_all(tasks: set[asyncio.Task[Any]], limit: float, hurry: asyncio.Event) -> None:
    # asyncio.wait never cancels what it waits for: the requests keep running when we stop waiting.
    waiters = {asyncio.create_task(asyncio.wait(tasks)), asyncio.create_task(hurry.wait())}
    try:
        await asyncio.wait(waiters, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.wait(waiters)


class StopSignals:
    """SIGTERM / SIGINT: the first asks to stop gracefully, any further one to hurry."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.hurry = asyncio.Event()

    def _received(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if not self.stop.is_set():
            log.info("%s received: finishing the answers in progress, then saving conversations", name)
            self.stop.set()
        else:
            log.warning("%s received again: cancelling the answers in progress", name)
            self.hurry.set()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in self.SIGNALS:
            with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C still ends the loop
                loop.add_signal_handler(signum, self._received, signum)

    def watch_supervisor(self, loop: asyncio.AbstractEventLoop, pipe: int) -> None:
        """A worker's pipe from its supervisor (``alice_py.supervisor``) ends only when the
        supervisor is gone: then stop gracefully, as on SIGTERM, rather than serve unsupervised."""

        def readable() -> None:
            if os.read(pipe, 64):
                return
            loop.remove_reader(pipe)
            if not self.stop.is_set():
                log.warning("the supervisor is gone: finishing the answers in progress, then stopping")
                self.stop.set()

        loop.add_reader(pipe, readable)

    def remove(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in self.SIGNALS:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signum)


async def run(
    app: web.Application, cfg: Config, sockets: list[socket.socket], supervisor_pipe: int | None = None
) -> None:
    """Serve ``app`` on ``sockets`` (already bound: ``listen``) until SIGTERM/SIGINT (or, in a
    worker, until its supervisor is gone), then shut down gracefully (see the module's doc)."""
    in_flight = InFlight()
    app.middlewares.insert(0, in_flight.middleware)  # outermost: sees every request
    loop = asyncio.get_running_loop()
    signals = StopSignals()
    signals.install(loop)
    if supervisor_pipe is not None:
        signals.watch_supervisor(loop, supervisor_pipe)
    # handler_cancellation: a client that leaves while the model is still thinking
    # cancels its answer at once (web.sse), instead of at the first write.
    runner = web.AppRunner(
        app,
        shutdown_timeout=CLOSE_TIMEOUT,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
        handler_cancellation=True,
        **accesslog.runner_kwargs(cfg.server.access_log),
    )
    try:
        await runner.setup()  # opens the resources: the database, the saved conversations …
        for sock in sockets:
            await web.SockSite(runner, sock, backlog=BACKLOG).start()
        if supervisor_pipe is not None:  # which worker answered a request: its X-Request-Id says
            prefix = app[appkeys.REQUEST_IDS].prefix
            log.info("worker pid %d serving; its request ids start with %s-", os.getpid(), prefix)
        tune_collector()
        await signals.stop.wait()
        for site in list(runner.sites):
            await site.stop()
        if runner.server is not None:
            runner.server.pre_shutdown()
        await in_flight.drain(cfg.server.drain_timeout, signals.hurry)
    finally:
        # Signals stay ours until the end: another one must not interrupt the saving.
        await runner.cleanup()
        signals.remove(loop)


def tune_collector() -> None:
    """Once started: what exists now (modules, the app, the conversations loaded) lives as long
    as the process, so it leaves the collector's sight (``gc.freeze``), and collections get rarer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(cfg: Config) -> int:
    sockets = listen(cfg.server.host, cfg.server.port)
    try:
        for line in startup_lines(cfg):
            log.info("%s", line)
        for door in open_doors(cfg):  # a public address: what it leaves open (alice_py.exposure)
            log.warning("%s", door)
        if cfg.server.workers > 1:
            status = Supervisor(cfg.server.workers, sockets, functools.partial(_worker, cfg, sockets)).run()
        else:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(run(create_app(cfg), cfg, sockets))
            status = 0
    finally:
        for sock in sockets:
            sock.close()
    log.info("stopped")
    return status


def _worker(cfg: Config, sockets: list[socket.socket], number: int, supervisor_pipe: int) -> int:
    """One serving process of ``--workers N`` (forked by ``alice_py.supervisor``)."""
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(run(create_app(cfg), cfg, sockets, supervisor_pipe))
    except ConfigError as exc:
        log.error("worker %d cannot start: %s", number, exc)
        return START_FAILED
    return 0
