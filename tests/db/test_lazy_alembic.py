"""A restart on a database that is up to date does not load Alembic: the service keeps less memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, sys
from alice_py.db.engine import create_engine, current_revision, head_revision, upgrade

async def main(url):
    engine = create_engine(url)
    try:
        await upgrade(engine)
        loaded = "alembic" in sys.modules
        print(await current_revision(engine) == head_revision(), loaded)
    finally:
        await engine.dispose()

asyncio.run(main(sys.argv[1]))
"""


def upgrade_in_a_new_process(url: str) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_alembic_is_loaded_only_when_there_is_something_to_migrate(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}"
    assert upgrade_in_a_new_process(url) == "True True"  # a new database: migrated
    assert upgrade_in_a_new_process(url) == "True False"  # a restart: one query, no Alembic
