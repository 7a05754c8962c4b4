"""What the benchmark runs on: Debian packages, free loopback ports, the nginx upstream, the
service under test, and readings of a process's CPU time and memory from /proc.

Every process is started in its own session (so a Ctrl-C in the terminal reaches only the
harness, which then stops them in order) and registered with a ``Processes`` object that
stops each one by its pid when the run ends, however it ends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench_upstream import ECHO_MODULE, UpstreamTiming, nginx_conf

PACKAGES = {
    "nginx": "nginx-light",
    "echo module": "libnginx-mod-http-echo",
    "wrk": "wrk",
    "taskset": "util-linux",
}
POLICY_RC = Path("/usr/sbin/policy-rc.d")


class BenchError(Exception):
    """Something the harness cannot work around; the message says what to do."""


# ---- packages ----------------------------------------------------------------------------------


def missing_packages() -> list[str]:
    found = {
        "nginx": shutil.which("nginx") is not None,
        "echo module": ECHO_MODULE.exists(),
        "wrk": shutil.which("wrk") is not None,
        "taskset": shutil.which("taskset") is not None and shutil.which("setpriv") is not None,
    }
    return [PACKAGES[name] for name, ok in found.items() if not ok]


def ensure_packages(log: IO[str]) -> None:
    """Install what is missing with apt-get (we run as root on these machines), or say what to run."""
    missing = missing_packages()
    if not missing:
        return
    command = "apt-get update && apt-get install -y " + " ".join(missing)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BenchError(f"the benchmark needs Debian packages {', '.join(missing)}: run `{command}` as root")
    print(f"installing {', '.join(missing)} with apt-get", file=log)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    # The nginx package would start a system nginx on port 80; a policy-rc.d that says no
    # keeps apt from starting any service, and is removed again if we put it there.
    added_policy = not POLICY_RC.exists()
    if added_policy:
        POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC.chmod(0o755)
    try:
        subprocess.run(["apt-get", *lock, "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", *lock, "install", "-y", "-qq", *missing], check=True, env=env, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"apt-get failed ({exc}); run `{command}` by hand") from None
    finally:
        if added_policy:
            POLICY_RC.unlink(missing_ok=True)
    still = missing_packages()
    if still:
        raise BenchError(f"still missing after apt-get: {', '.join(still)}")


# ---- ports, limits, /proc -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def raise_open_files(wanted: int) -> int:
    """Raise the soft open-files limit (children inherit it); the limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


@dataclass(frozen=True, slots=True)
class CpuSample:
    wall: float
    cpu_seconds: float


def cpu_sample(pid: int) -> CpuSample:
    """User + system time of the whole process (every thread), from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    return CpuSample(time.monotonic(), ticks / os.sysconf("SC_CLK_TCK"))


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (``--workers``: the supervisor's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # ended meanwhile
            if int(raw[raw.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


def tree_cpu_sample(pid: int) -> CpuSample:
    """``cpu_sample`` of ``pid`` plus its live children's: a ``--workers`` service's CPU is its
    workers'. (A child that ended within the interval takes its time with it: the workers of a
    measured run live through it.)"""
    sample = cpu_sample(pid)
    total = sample.cpu_seconds
    for child in children(pid):
        with contextlib.suppress(OSError):
            total += cpu_sample(child).cpu_seconds
    return CpuSample(sample.wall, total)


def tree_rss_mib(pid: int) -> float:
    total = rss_mib(pid)
    for child in children(pid):
        with contextlib.suppress(OSError, BenchError):
            total += rss_mib(child)
    return total


def cpu_percent(before: CpuSample, after: CpuSample) -> float:
    """100 = one core busy for the whole interval."""
    wall = after.wall - before.wall
    return 100.0 * (after.cpu_seconds - before.cpu_seconds) / wall if wall > 0 else 0.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for pid {pid}")


def listen_overflows() -> int:
    """TcpExt ListenOverflows, machine-wide: connections dropped because an accept queue was full
    (the client then retries its SYN after 1, 3, 7, 15 s: huge first-byte times, no error)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True)).get("ListenOverflows", 0))
    return 0


def load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# ---- processes ------------------------------------------------------------------------------------


@dataclass
class Started:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Processes:
    """Everything the harness started; ``stop_all`` ends them, newest first, by pid."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._running: list[Started] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Started:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as log_file:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        started = Started(name, proc, log_path)
        self._running.append(started)
        return started

    def stop(self, started: Started, timeout: float = 15.0) -> None:
        if started in self._running:
            self._running.remove(started)
        proc = started.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"{started.name} (pid {proc.pid}) ignored SIGTERM; killing it", file=sys.stderr)
                proc.kill()
                proc.wait(5)
        # nginx workers and anything else left in the session we created for this process
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for started in reversed(list(self._running)):
            self.stop(started)


def wait_http(url: str, started: Started, timeout: float = 60.0) -> None:
    """Until ``url`` answers 2xx; a BenchError with the log's tail if the process dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.proc.poll() is not None:
            raise BenchError(f"{started.name} exited with {started.proc.returncode}:\n{started.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if 200 <= resp.status < 300:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise BenchError(f"{started.name} did not answer {url} within {timeout:.0f} s:\n{started.log_tail()}")


def _unprivileged(argv: list[str], workdir: Path) -> list[str]:
    """As root, run as ``nobody`` with setpriv, so nginx never holds root (and owns its directory)."""
    if os.geteuid() != 0:
        return argv
    nobody = pwd.getpwnam("nobody")
    os.chown(workdir, nobody.pw_uid, nobody.pw_gid)
    return [
        "setpriv",
        f"--reuid={nobody.pw_uid}",
        f"--regid={nobody.pw_gid}",
        "--clear-groups",
        "--",
        *argv,
    ]


def start_nginx(
    procs: Processes, cpu: int, timing: UpstreamTiming, max_connections: int
) -> tuple[Started, int]:
    """The fake upstream on a free loopback port, pinned to ``cpu``; (process, port)."""
    root = procs.workdir / "nginx"
    root.mkdir(mode=0o755)
    procs.workdir.chmod(0o755)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(nginx_conf(root, port, timing, max_connections))
    nginx = _unprivileged(["nginx", "-p", str(root), "-c", str(conf), "-e", str(root / "error.log")], root)
    check = subprocess.run([*nginx, "-t", "-q"], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        raise BenchError(f"nginx rejected the generated config {conf}:\n{check.stderr}")
    started = procs.start("nginx", ["taskset", "-c", str(cpu), *nginx, "-g", "daemon off;"])
    _wait_port(port, started)
    return started, port


def _wait_port(port: int, started: Started, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.proc.poll() is not None:
            raise BenchError(f"{started.name} exited with {started.proc.returncode}:\n{started.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{started.name} is not listening on port {port}:\n{started.log_tail()}")


@dataclass(frozen=True, slots=True)
class Service:
    started: Started
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_service(
    procs: Processes, python: str, cpu: int | str, upstream_base: str, tag: str, extra: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> Service:
    """``alice_py serve`` pinned to ``cpu`` (a core, or a taskset list such as "0,1"), talking
    to ``upstream_base``; waits for /healthz."""
    port = free_port()
    db = procs.workdir / f"{tag}.db"
    serve = f"-m alice_py serve --port {port} --auth none --limit 0".split()
    upstream = ["--base-url", upstream_base, "--db", f"sqlite+aiosqlite:///{db}"]
    argv = ["taskset", "-c", str(cpu), python, *serve, *upstream, *extra]
    # the key only has to exist: nginx does not look at it
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", **(extra_env or {})}
    started = procs.start(f"service-{tag}", argv, env)
    wait_http(f"http://127.0.0.1:{port}/healthz", started)
    return Service(started, port)
