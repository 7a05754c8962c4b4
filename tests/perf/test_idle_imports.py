"""What an idle service keeps in memory: the optional parts are loaded only when used (issue 6, W4).

Two views of the real ``alice-py serve`` process:

- ``/proc/<pid>/maps`` of the running server: the shared objects of extension modules
  (cryptography's, for the admin page's cookie storage) are there only when needed;
- ``sys.modules`` of a process that runs ``alice_py.cli.main`` exactly as the command does,
  read once ``/healthz`` answers: no terminal client, no demo model, no Alembic at a restart,
  no PostgreSQL dialect for a SQLite database.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import clean_env, free_port, run_cli, running_server

CRYPTOGRAPHY_SO = "cryptography/hazmat/bindings/_rust"

# Module names (and their submodules) a plain serving process must not have loaded.
NOT_WHEN_SERVING = (
    "alice_py.chat.client",
    "alice_py.chat.session",
    "alice_py.chat.terminal",
    "alice_py.fake",
    "alembic",
    "mako",
    "pygments",
    "cryptography",
    "redis",  # the Redis store's client only: it loads cryptography too
    "limits",  # the Redis store's rate limits only (web.shared_state)
    "aiohttp_session.cookie_storage",
    "sqlalchemy.dialects.postgresql",
)

# Runs the real command in this process and, once it answers, writes its sys.modules and stops it.
SERVE_AND_LIST_MODULES = """
import os, signal, sys, threading, time, urllib.request

url, out = sys.argv[1], sys.argv[2]

def list_modules_when_up():
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    with open(out, "w", encoding="utf-8") as file:
        file.write("\\n".join(sorted(sys.modules)))
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=list_modules_when_up, daemon=True).start()
from alice_py.cli import main
sys.exit(main(sys.argv[3:]))
"""


def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}"


def migrated_db(tmp_path: Path) -> str:
    url = db_url(tmp_path)
    result = run_cli(["db", "upgrade", "--db", url], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return url


def modules_of_serve(tmp_path: Path, *flags: str, env: dict[str, str] | None = None) -> set[str]:
    port = free_port()
    out = tmp_path / "modules.txt"
    argv = ["serve", "--port", str(port), "--auth", "none", "--limit", "0", *flags]
    result = subprocess.run(
        [sys.executable, "-c", SERVE_AND_LIST_MODULES, f"http://127.0.0.1:{port}", str(out), *argv],
        cwd=tmp_path,
        env=env or clean_env(OPENAI_API_KEY="sk-test"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    modules = set(out.read_text(encoding="utf-8").split())
    assert {"aiohttp.web", "sqlalchemy.ext.asyncio", "alice_py.app"} <= modules  # it really served
    return modules


def loaded(modules: set[str], name: str) -> bool:
    return any(module == name or module.startswith(name + ".") for module in modules)


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text(encoding="utf-8")


def test_a_restarted_service_has_loaded_none_of_the_optional_modules(tmp_path: Path) -> None:
    modules = modules_of_serve(tmp_path, "--db", migrated_db(tmp_path))
    assert [name for name in NOT_WHEN_SERVING if loaded(modules, name)] == []


def test_the_demo_model_is_loaded_with_demo(tmp_path: Path) -> None:
    modules = modules_of_serve(tmp_path, "--demo", "--db", migrated_db(tmp_path))
    assert loaded(modules, "alice_py.fake")
    assert not loaded(modules, "alice_py.chat.client")


def test_cryptography_is_mapped_only_when_the_admin_page_is_on(tmp_path: Path) -> None:
    url = migrated_db(tmp_path)
    env = clean_env(OPENAI_API_KEY="sk-test")
    with running_server(["--db", url], cwd=tmp_path, env=env) as (_, proc):
        assert CRYPTOGRAPHY_SO not in mapped_files(proc.pid)
    with running_server(["--db", url], cwd=tmp_path, env={**env, "ALICE_ADMIN_PASSWORD": "pw"}) as (_, proc):
        assert CRYPTOGRAPHY_SO in mapped_files(proc.pid)
