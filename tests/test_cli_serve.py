"""The real `alice-py` process: what a user sees when starting it right and wrong."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from tests.support import clean_env, http_get, run_cli, running_server

NO_KEY = "no API key: put keys in key.txt, set OPENAI_API_KEY, or run with --demo"


def test_no_key_and_no_demo_exits_2_with_the_message(tmp_path: Path) -> None:
    result = run_cli(["serve"], cwd=tmp_path)
    assert result.returncode == 2
    assert NO_KEY in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_toml_key_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[server]\nprot = 8000\n", encoding="utf-8")
    result = run_cli(["serve", "--demo", "--config", "bad.toml"], cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.toml: unknown key 'prot' in [server]" in result.stderr


def test_wrong_type_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[limits]\nper_minute = "many"\n', encoding="utf-8")
    result = run_cli(["--demo", "--config", "bad.toml"], cwd=tmp_path)
    assert result.returncode == 2
    assert "[limits] per_minute must be an integer, got str" in result.stderr


def test_port_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--demo", "--port", str(port), "--db", db_url(tmp_path)], cwd=tmp_path)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}"


def test_demo_serves_with_no_key_and_says_so(tmp_path: Path) -> None:
    with running_server(["--demo"], cwd=tmp_path) as (url, proc):
        assert http_get(url + "/healthz") == (200, "ok")
        assert http_get(url + "/readyz") == (200, "ready")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        log = proc.stderr.read() if proc.stderr else ""
    first_lines = "\n".join(log.splitlines()[:3])
    assert "built-in demo model" in first_lines
    # The default database folder is created next to where the user ran it.
    assert (tmp_path / "data" / "alice.db").exists()


def test_key_file_in_working_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "key.txt").write_text("sk-from-file-1234\n", encoding="utf-8")
    with running_server(["--base-url", "http://127.0.0.1:9/v1"], cwd=tmp_path) as (url, proc):
        assert http_get(url + "/healthz")[0] == 200
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log = proc.stderr.read() if proc.stderr else ""
    assert "with 1 key(s)" in log
    assert "sk-from-file-1234" not in log


def test_public_address_with_default_secret_warns(tmp_path: Path) -> None:
    with running_server(["--demo", "--host", "0.0.0.0"], cwd=tmp_path, env=clean_env()) as (_, proc):
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log = proc.stderr.read() if proc.stderr else ""
    assert "with the default secret 'alice'" in log


def test_garbage_request_gets_400_and_no_traceback_in_the_log(tmp_path: Path) -> None:
    with running_server(["--demo"], cwd=tmp_path) as (url, proc):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad\x7fName: y\r\n\r\n")
            reply = sock.recv(4096)
        assert reply.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
        assert http_get(url + "/healthz") == (200, "ok")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in log


def test_debug_log_never_shows_sql_or_keys(tmp_path: Path) -> None:
    key = "sk-secret-debug-key-9876"
    (tmp_path / "key.txt").write_text(key + "\n", encoding="utf-8")
    with running_server(["--demo", "--log-level", "DEBUG"], cwd=tmp_path) as (url, proc):
        assert http_get(url + "/healthz")[0] == 200
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log = proc.stderr.read() if proc.stderr else ""
    assert "SELECT" not in log and "INSERT" not in log
    assert key not in log
