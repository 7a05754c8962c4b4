"""``alice-py serve --workers N``: the start-up refusal that needs no Redis store."""

from __future__ import annotations

from pathlib import Path

from tests.support import run_cli


def test_several_workers_on_the_memory_store_are_refused_with_one_line(tmp_path: Path) -> None:
    result = run_cli(["serve", "--demo", "--workers", "2"], cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        'alice-py: 2 workers need the shared Redis store: set [conversations] store = "redis" '
        "(and redis_url), or run one worker (the memory store is one process's)"
    ]
    assert not (tmp_path / "data").exists()  # refused before anything was opened


def test_zero_workers_is_refused(tmp_path: Path) -> None:
    result = run_cli(["serve", "--demo", "--workers", "0"], cwd=tmp_path)
    assert result.returncode == 2
    assert "server workers must be 1 or more, got 0" in result.stderr
