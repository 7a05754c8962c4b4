"""Start-up says what is open: on a public address, one warning per open door."""

from __future__ import annotations

import signal
from pathlib import Path

from alice_py.config import Config
from alice_py.exposure import open_doors
from tests.support import clean_env, running_server

PUBLIC = Config().replace(server={"host": "0.0.0.0"})
CLOSED = PUBLIC.replace(
    auth={"token": "a-long-secret"},
    server={"cors_origins": ("https://app.example",)},
    limits={"per_client": 30},
    models={"allowed": ("gpt-4o-mini",)},
)


def test_every_door_closed_is_silent() -> None:
    assert open_doors(CLOSED) == []


def test_loopback_is_silent_whatever_is_open() -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        assert open_doors(Config().replace(server={"host": host}, auth={"mode": "none"})) == []


def test_each_door_has_its_own_warning() -> None:
    cases = {
        "auth": ({"mode": "none"}, '[auth] mode is "none" on 0.0.0.0:7777'),
        "server": ({"cors_origins": ("*",)}, '[server] cors_origins has "*" (CORS)'),
        "limits": ({"per_client": 0}, "no per-client limit ([limits] per_client = 0)"),
        "models": ({"allowed": ()}, "no model allow-list ([models] allowed is empty)"),
    }
    for section, (values, start) in cases.items():
        doors = open_doors(CLOSED.replace(**{section: values}))
        assert len(doors) == 1 and doors[0].startswith(start), (section, doors)
    doors = open_doors(CLOSED.replace(auth={"token": "alice"}))
    assert len(doors) == 1 and "with the default secret 'alice'" in doors[0]


def test_auth_none_is_one_door_not_two() -> None:
    """With no auth, the default token is not a door of its own."""
    doors = open_doors(PUBLIC.replace(auth={"mode": "none"}))
    assert [door.split(" ", 3)[:3] for door in doors] == [
        ["[auth]", "mode", "is"],
        ["[server]", "cors_origins", "has"],
        ["no", "per-client", "limit"],
        ["no", "model", "allow-list"],
    ]


def test_a_public_demo_without_a_secret_says_so() -> None:
    doors = open_doors(PUBLIC.replace(auth={"mode": "none"}, upstream={"demo": True}))
    assert doors[0].startswith("listening on 0.0.0.0:7777 with --demo and no secret")
    assert '[auth] mode is "none"' in doors[0]


def test_a_public_process_logs_each_open_door(tmp_path: Path) -> None:
    args = ["--demo", "--auth", "simple", "--host", "0.0.0.0"]
    with running_server(args, cwd=tmp_path, env=clean_env()) as (url, proc):
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log = proc.stderr.read() if proc.stderr else ""
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    port = int(url.rsplit(":", 1)[1])
    expected = open_doors(PUBLIC.replace(server={"port": port}, upstream={"demo": True}))
    assert len(expected) == 4  # the defaults but auth: the default token, CORS, per-client, models
    for door in expected:
        assert sum(line.endswith(door) for line in warnings) == 1, (door, warnings)
