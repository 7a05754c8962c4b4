"""The access log: off by default (it costs a quarter of a fast relay's CPU), one line per request when on."""

from __future__ import annotations

import signal
import urllib.request
from pathlib import Path

from tests.support import clean_env, http_get, running_server


def _serve_and_read_log(tmp_path: Path, **env: str) -> str:
    args = ["--demo", "--db", f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}"]
    with running_server(args, cwd=tmp_path, env=clean_env(**env)) as (url, proc):
        assert http_get(url + "/healthz?probe=1") == (200, "ok")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        return proc.stderr.read() if proc.stderr else ""


def test_no_access_log_by_default(tmp_path: Path) -> None:
    log = _serve_and_read_log(tmp_path)
    assert "alice-py" in log  # the start-up lines are there
    assert "GET /healthz" not in log


def test_access_log_on_writes_one_line_per_request(tmp_path: Path) -> None:
    log = _serve_and_read_log(tmp_path, ALICE_SERVER_ACCESS_LOG="true")
    lines = [line for line in log.splitlines() if '"GET /healthz?probe=1" 200' in line]
    assert len(lines) == 1, log
    assert "aiohttp.access" in lines[0] and "127.0.0.1" in lines[0] and lines[0].endswith("ms")


def test_behind_a_trusted_proxy_the_access_log_names_the_client_it_forwards_for(tmp_path: Path) -> None:
    args = ["--demo", "--db", f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}"]
    env = clean_env(ALICE_SERVER_ACCESS_LOG="true", ALICE_SERVER_TRUSTED_PROXIES="127.0.0.1")
    with running_server(args, cwd=tmp_path, env=env) as (url, proc):
        forged_then_proxy = {"X-Forwarded-For": "203.0.113.66, 198.51.100.7"}
        proxied_request = urllib.request.Request(url + "/healthz?via=proxy", headers=forged_then_proxy)
        with urllib.request.urlopen(proxied_request, timeout=5):
            pass
        assert http_get(url + "/healthz?direct=1") == (200, "ok")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        log = proc.stderr.read() if proc.stderr else ""
    (proxied,) = [line for line in log.splitlines() if "/healthz?via=proxy" in line]
    assert ' 198.51.100.7 "GET /healthz?via=proxy" 200' in proxied  # the hop the proxy saw
    (direct,) = [line for line in log.splitlines() if "/healthz?direct=1" in line]
    assert ' 127.0.0.1 "GET /healthz?direct=1" 200' in direct
