"""Idle memory of ``alice-py serve`` (issue 6, W4's idle figure), without any load.

For each round: start the real service on a free loopback port against an SQLite file,
wait until ``/healthz`` answers, make one more ``/healthz`` request, wait a second, read
``VmRSS`` from ``/proc/<pid>/status``, stop it with SIGTERM. Two cases:

- ``restart``: a database made once beforehand with ``alice-py db upgrade`` (the usual start);
- ``first``: a new database file each round (the start runs the migrations).

The median of the rounds is printed per case. ``--tree`` measures another checkout (e.g. a
``git worktree`` of an older commit) with the same interpreter, for before/after pairs.
``--maps`` also prints the shared objects mapped by the idle process (extension modules).

    .venv/bin/python scripts/bench_idle_rss.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALICE_")}
    env["OPENAI_API_KEY"] = "sk-x"
    env["PYTHONPATH"] = str(tree)
    return env


def healthz(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def mapped_objects(pid: int) -> list[str]:
    paths = {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()}
    return sorted(path for path in paths if ".so" in path)


def db_upgrade(python: str, tree: Path, db_url: str) -> None:
    subprocess.run(
        [python, "-m", "alice_py", "db", "upgrade", "--db", db_url],
        cwd=tree,
        env=service_env(tree),
        check=True,
        capture_output=True,
    )


def idle_rss(python: str, tree: Path, db_url: str, show_maps: bool) -> float:
    port = free_port()
    command = [python, "-m", "alice_py", "serve", "--port", str(port), "--auth", "none", "--limit", "0"]
    proc = subprocess.Popen(
        [*command, "--db", db_url],
        cwd=tree,
        env=service_env(tree),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not healthz(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start (exit status {proc.poll()})")
            time.sleep(0.1)
        healthz(url)
        time.sleep(1.0)
        rss = rss_mib(proc.pid)
        if show_maps:
            print("\n".join(mapped_objects(proc.pid)))
        return rss
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to measure (this one)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter (this one)")
    parser.add_argument("--cases", default="restart,first", help="restart, first or both")
    parser.add_argument("--maps", action="store_true", help="print the shared objects mapped at idle")
    args = parser.parse_args()
    tree = args.tree.resolve()
    with tempfile.TemporaryDirectory(prefix="idle-rss-") as tmp:
        for case in args.cases.split(","):
            readings = []
            for round_no in range(args.rounds):
                name = "restart.db" if case == "restart" else f"first-{round_no}.db"
                db_url = f"sqlite+aiosqlite:///{Path(tmp) / name}"
                if case == "restart" and round_no == 0:
                    db_upgrade(args.python, tree, db_url)
                readings.append(idle_rss(args.python, tree, db_url, args.maps and round_no == 0))
            shown = " ".join(f"{value:.1f}" for value in readings)
            print(f"{case}: median {statistics.median(readings):.1f} MiB idle RSS ({shown})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
