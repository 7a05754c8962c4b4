"""Helpers shared by the tests: free ports, running the real `alice-py` process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alice_py.config import Config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any ALICE_* or OPENAI_API_KEY the developer may have set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALICE_") and k != "OPENAI_API_KEY"}
    env.update(extra)
    return env


def run_cli(
    args: list[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alice_py", *args],
        cwd=cwd,
        env=dict(env or clean_env()),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until_up(url: str, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stderr = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"server exited with {proc.returncode}: {stderr}")
        try:
            if http_get(url + "/healthz", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server at {url} did not answer within {timeout} s")


@contextmanager
def running_server(
    args: list[str], cwd: Path, env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The real service as a subprocess on a free port; stopped with SIGTERM at the end."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "alice_py", "serve", "--port", str(port), *args],
        cwd=cwd,
        env=dict(env or clean_env()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Clock:
    """A clock the test moves by hand (for monotonic timers and wall clocks alike)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def wait_until(condition: Callable[[], bool], limit: float = 2.0) -> None:
    """Until ``condition()`` holds (for counters of the fake upstream: nothing to await on)."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def app_config(
    upstream_url: str,
    tmp_path: Path,
    *,
    upstream_key: str,
    auth_mode: str = "none",
    secret: str = "s3cret",
    **sections: dict[str, Any],
) -> Config:
    """A config for the real app against a fake upstream, with its database in ``tmp_path``;
    no rate limit unless a test asks for one."""
    base: dict[str, dict[str, Any]] = {
        "upstream": {"base_url": upstream_url, "keys": (upstream_key,)},
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}"},
        "auth": {"mode": auth_mode, "token": secret},
        "limits": {"per_minute": 0},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return Config().replace(**base)
