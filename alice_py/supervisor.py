"""``--workers N``: N serving processes on one port, and the ``alice-py serve`` process their supervisor.

How (pre-fork, as nginx and gunicorn do it): the supervisor binds the listening sockets
once (``server.listen``: a port in use still ends the start with one line), then forks
the workers, which inherit them and accept on them; the kernel hands each connection to
one worker. Why our own, rather than gunicorn's aiohttp worker: the service's graceful
stop (``server.run``: stop accepting, let the answers finish, cancel the rest, *then*
save) is the reason the conversations survive a restart, and gunicorn's worker runs
aiohttp's own shutdown instead, which cancels handlers without waiting for them (see
``server``'s module doc). A shared socket rather than one ``SO_REUSEPORT`` socket per
worker: a connection waiting in a dying worker's own queue would be reset, while with
one queue the surviving workers (and the replacement) take it.

The supervisor:

- replaces a worker that dies (logged, with its exit status); a worker that fails at
  start-up with a configuration or database error (exit status 2) stops the service
  with that status instead, since a replacement would fail the same way; and so does
  a worker dying within ``QUICK_DEATH`` seconds of its start ``MAX_QUICK_DEATHS``
  times in a row (a crash loop must not spin forever);
- on SIGTERM or SIGINT, passes SIGTERM on to every worker (each drains and saves as a
  single process does) and exits when they all have; a second signal is passed on
  too, which makes the workers stop waiting for the answers in progress.

Workers run in their own process group, so a terminal's Ctrl-C reaches only the
supervisor (which passes it on once), not every worker at the same time. Each worker
holds the read end of a pipe whose write end only the supervisor holds: if the
supervisor is killed outright, the pipe ends and the workers stop gracefully by
themselves rather than serving on unsupervised.

The counts behind ``/metrics`` are the whole service's (``metrics_workers``): the
supervisor makes a fresh directory for them (``PROMETHEUS_MULTIPROC_DIR``, inherited by
the workers), tells the library when a worker is gone (``mark_process_dead``), and
removes the directory when it stops.

Only the Redis store can be shared by several processes: ``config.validate`` refuses
``workers > 1`` with the memory store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from prometheus_client.multiprocess import mark_process_dead

from alice_py.metrics_workers import DIRECTORY_ENV

log = logging.getLogger("alice_py")

QUICK_DEATH = 5.0
"""Seconds after its start within which a worker's death counts towards a crash loop."""
MAX_QUICK_DEATHS = 5
START_FAILED = 2
"""A worker's exit status for "could not start" (configuration, database): not worth replacing."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

WorkerMain = Callable[[int, int], int]
"""What a worker runs: ``(worker number, fd of the supervisor pipe) -> exit status``."""


@dataclass(slots=True)
class _Worker:
    number: int
    started: float
    pipe: int
    """The write end of this worker's supervisor pipe (closing it tells the worker to stop)."""


class Supervisor:
    def __init__(self, count: int, sockets: list[socket.socket], worker_main: WorkerMain) -> None:
        self._count = count
        self._sockets = sockets
        self._worker_main = worker_main
        self._workers: dict[int, _Worker] = {}
        self._stopping = False
        self._quick_deaths = 0
        self._status = 0
        self._metrics_dir = ""

    def run(self) -> int:
        previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        # Fresh for each run: counts of an earlier service (or another one) must not be summed in.
        self._metrics_dir = tempfile.mkdtemp(prefix="alice-py-metrics-")
        outer = os.environ.get(DIRECTORY_ENV)
        os.environ[DIRECTORY_ENV] = self._metrics_dir
        try:
            for number in range(1, self._count + 1):
                self._spawn(number)
            while self._workers:
                pid, status = os.wait()  # PEP 475: resumed after each signal handler
                self._reaped(pid, status)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            if outer is None:
                os.environ.pop(DIRECTORY_ENV, None)
            else:
                os.environ[DIRECTORY_ENV] = outer
        log.info("all workers stopped")
        return self._status

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not self._stopping:
            log.info("%s received: stopping %d worker(s) gracefully", name, len(self._workers))
        else:
            log.warning("%s received again: the workers stop waiting for answers in progress", name)
        self._stop_all()

    def _stop_all(self) -> None:
        self._stopping = True
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):  # already gone: os.wait will report it
                os.kill(pid, signal.SIGTERM)

    def _spawn(self, number: int) -> None:
        read_end, write_end = os.pipe()
        # A stop signal arriving between the fork and the bookkeeping would miss the new worker.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                os.setpgid(0, 0)
                for signum in STOP_SIGNALS:
                    signal.signal(signum, signal.SIG_DFL)  # the worker's loop installs its own
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
                os.close(write_end)
                for other in self._workers.values():
                    os.close(other.pipe)  # only the supervisor may hold them: see the module doc
                status = self._worker_main(number, read_end)
            except BaseException:
                log.exception("worker %d failed", number)
            finally:
                logging.shutdown()
                os._exit(status)  # never return into the supervisor's code
        os.close(read_end)
        self._workers[pid] = _Worker(number, time.monotonic(), write_end)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        log.info("worker %d started (pid %d)", number, pid)

    def _reaped(self, pid: int, status: int) -> None:
        worker = self._workers.pop(pid, None)
        if worker is None:
            return
        os.close(worker.pipe)
        # Its open streams are no more (the library leaves this one untyped).
        mark_process_dead(pid, self._metrics_dir)  # type: ignore[no-untyped-call]
        code = os.waitstatus_to_exitcode(status)
        if self._stopping:
            if code not in (0, -signal.SIGTERM):
                log.warning("worker %d (pid %d) ended with %s", worker.number, pid, _describe(code))
            return
        log.error("worker %d (pid %d) ended with %s", worker.number, pid, _describe(code))
        if code == START_FAILED:
            log.error("stopping: worker %d could not start (see above), another would fail the same way",
                      worker.number)
            self._status = START_FAILED
            self._stop_all()
            return
        self._quick_deaths = self._quick_deaths + 1 if time.monotonic() - worker.started < QUICK_DEATH else 0
        if self._quick_deaths >= MAX_QUICK_DEATHS:
            log.error("stopping: workers died %d times in a row within %gs of starting",
                      self._quick_deaths, QUICK_DEATH)
            self._status = 1
            self._stop_all()
            return
        log.info("starting a worker in its place")
        self._spawn(worker.number)


def _describe(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit status {code}"
