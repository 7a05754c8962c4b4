"""The real `alice-py` process: what a user sees when starting it right and wrong."""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

from alice_py.fake import CHAT_PREFIX
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


def test_port_in_use_exits_2_with_one_line_and_no_database(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--demo", "--port", str(port), "--db", db_url(tmp_path)], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"alice-py: port {port} on 127.0.0.1 is already in use"]
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no database file, no folder, no secret file


def post(url: str, body: str = "", **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, resp.read().decode()


def saved_conversations(path: Path) -> list[tuple[str, bytes, float]]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute("SELECT id, data, last_active FROM conversations ORDER BY id").fetchall()


def file_states(folder: Path) -> dict[str, tuple[int, int]]:
    """mtime and size of every file but SQLite's shared-memory index (which readers touch)."""
    files = (path for path in folder.iterdir() if not path.name.endswith("-shm"))
    return {path.name: (path.stat().st_mtime_ns, path.stat().st_size) for path in files}


def test_a_second_instance_on_a_taken_port_touches_none_of_the_first_ones_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = data / "alice.db"
    env = clean_env(ALICE_CONVERSATIONS_WRITE_BEHIND="0.2")
    with running_server(["--demo", "--db", f"sqlite+aiosqlite:///{database}"], cwd=tmp_path, env=env) as (
        url,
        first,
    ):
        _, conv = post(url + "/chatgpt/createGPT4", "Answer briefly.")
        assert post(url + "/chatgpt/chat", "first question", conversation=conv)[0] == 200
        deadline = time.monotonic() + 10
        while not saved_conversations(database) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # a write-behind round in progress ends; none follows while nothing changes
        rows, files = saved_conversations(database), file_states(data)
        assert [row[0] for row in rows] == [conv]
        port = url.rsplit(":", 1)[1]
        second_args = ["serve", "--demo", "--port", port, "--db", f"sqlite+aiosqlite:///{database}"]
        second = run_cli(second_args, cwd=tmp_path, env=env)
        assert second.returncode == 2
        assert second.stderr.splitlines() == [f"alice-py: port {port} on 127.0.0.1 is already in use"]
        assert file_states(data) == files
        assert saved_conversations(database) == rows
        # The first instance carries on with its conversation as if nothing happened.
        status, answer = post(url + "/chatgpt/chat", "second question", conversation=conv)
        assert status == 200 and "second question" in answer
        _, context = post(url + "/chatgpt/context", conversation=conv)
        assert "first question" in context and "second question" in context
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0


def test_go_style_d_sets_the_ttl_and_the_service_starts(tmp_path: Path) -> None:
    # Before: "-d 3600" was taken for a database URL and the service stopped at start-up.
    with running_server(["--demo", "-d", "3600"], cwd=tmp_path) as (url, _):
        assert http_get(url + "/healthz") == (200, "ok")
    assert (tmp_path / "data" / "alice.db").exists()


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
    args = ["--demo", "--auth", "simple", "--host", "0.0.0.0"]
    with running_server(args, cwd=tmp_path, env=clean_env()) as (_, proc):
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log = proc.stderr.read() if proc.stderr else ""
    assert "with the default secret 'alice'" in log


def test_demo_needs_no_secret_unless_one_is_set(tmp_path: Path) -> None:
    with running_server(["--demo", "--host", "0.0.0.0"], cwd=tmp_path, env=clean_env()) as (url, proc):
        status, conv = post(url + "/chatgpt/createGPT4")
        assert status == 200
        assert post(url + "/chatgpt/chat", "Hello!", conversation=conv) == (200, CHAT_PREFIX + "Hello!")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log = proc.stderr.read() if proc.stderr else ""
    assert "auth none (--demo with no secret set" in log
    assert "with --demo and no secret: anyone who can reach this port can use the service" in log
    with running_server(["--demo", "-t", "s3cret"], cwd=tmp_path, env=clean_env()) as (url, _):
        try:
            post(url + "/chatgpt/createGPT4")
            raise AssertionError("a secret set with --demo must still be required")
        except urllib.error.HTTPError as exc:
            assert (exc.code, exc.read().decode()) == (401, "Auth failed")
        assert post(url + "/chatgpt/createGPT4", token="s3cret")[0] == 200


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


def _trickle(port: int, head: bytes, pieces: list[bytes], pause: float) -> tuple[bytes, float]:
    """Send ``head``, then ``pieces`` ``pause`` s apart until the server answers: what came
    back before the server closed the connection, and when it closed (s after the head)."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        for piece in pieces:
            ready, _, _ = select.select([sock], [], [], pause)
            if ready:
                break
            sock.sendall(piece)
        sock.setblocking(True)
        sock.settimeout(15)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return received, time.monotonic() - started


def test_a_body_sent_too_slowly_gets_408_and_the_connection_closes(tmp_path: Path) -> None:
    (tmp_path / "slow.toml").write_text("[server]\nbody_timeout = 1.0\n", encoding="utf-8")
    with running_server(["--demo", "--config", "slow.toml"], cwd=tmp_path) as (url, proc):
        port = int(url.rsplit(":", 1)[1])
        body = b'{"prompt": "' + b"x" * 36 + b'"}'
        head = (
            b"POST /chatgpt/createTurbo HTTP/1.1\r\nHost: x\r\ntoken: alice\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        # One byte every 0.2 s: 10 s for the body, far more than its second.
        reply, closed_after = _trickle(port, head, [body[i : i + 1] for i in range(len(body))], 0.2)
        status_line, _, rest = reply.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 408 Request Timeout", reply
        assert b"Connection: close" in rest
        assert rest.endswith(b"The request body did not arrive within 1 s; send it at once")
        # Closed at once, not after aiohttp's 10 s of reading the rest.
        assert closed_after < 4
        # A body in two pieces within the second is fine.
        closing = head.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n")
        ok, _ = _trickle(port, closing, [body[:10], body[10:]], 0.3)
        assert ok.startswith(b"HTTP/1.1 200 OK"), ok
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in log and "ERROR" not in log


def test_a_raw_at_in_the_database_password_never_shows(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://alice:Xq7@Zk9@127.0.0.1:1/alice"
    result = run_cli(["serve", "--demo", "--db", url], cwd=tmp_path)
    assert result.returncode == 2
    masked = "postgresql+asyncpg://alice:***@127.0.0.1:1/alice"
    assert f"database {masked}" in result.stderr  # the start-up log line
    assert f"cannot open the database '{masked}'" in result.stderr  # the error: the host was read right
    assert "Xq7" not in result.stderr and "Zk9" not in result.stderr
    assert "Traceback" not in result.stderr


def test_an_ambiguous_database_password_is_refused_without_showing_it(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://alice:Xq7@Zk9/Wm4@127.0.0.1:1/alice"
    result = run_cli(["serve", "--demo", "--db", url], cwd=tmp_path)
    assert result.returncode == 2
    assert "percent-encode the special characters of the user name and password (@ as %40" in result.stderr
    for part in ("Xq7", "Zk9", "Wm4"):
        assert part not in result.stderr
    assert "Traceback" not in result.stderr
