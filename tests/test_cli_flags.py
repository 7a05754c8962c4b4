"""Both flag styles: the long ones and Alice's Go-style ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from alice_py import cli


def layer(argv: list[str]) -> dict[str, dict[str, object]]:
    raw = list(argv)
    if not raw or raw[0] not in cli.SUBCOMMANDS:
        raw.insert(0, "serve")
    return cli.flags_layer(cli.build_parser().parse_args(cli.normalize_go_flags(raw)))


def test_long_flags() -> None:
    got = layer(
        [
            "--host", "0.0.0.0", "--port", "8000", "--token", "s", "--auth", "normal", "--limit", "0",
            "--ttl", "60", "--db", "sqlite+aiosqlite:///x.db", "--base-url", "http://u/v1",
            "--keys-file", "k.txt", "--proxy", "http://p:1", "--no-auto-remove-keys",
            "--compat-status", "--demo",
        ]
    )
    assert got == {
        "server": {"host": "0.0.0.0", "port": 8000, "compat_status": True},
        "auth": {"token": "s", "mode": "normal"},
        "limits": {"per_minute": 0},
        "conversations": {"ttl": 60.0},
        "database": {"url": "sqlite+aiosqlite:///x.db"},
        "upstream": {
            "base_url": "http://u/v1",
            "keys_file": "k.txt",
            "proxy": "http://p:1",
            "auto_remove_keys": False,
            "demo": True,
        },
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["-p", "8080", "-t", "sec", "-l", "10", "-auth", "normal", "-proxy", "http://p:1", "-a=false"],
        ["-p=8080", "-t=sec", "-l=10", "-auth=normal", "-proxy=http://p:1", "-a=false"],
    ],
)
def test_go_style_flags(argv: list[str]) -> None:
    got = layer(argv)
    assert got["server"] == {"port": 8080}
    assert got["auth"] == {"token": "sec", "mode": "normal"}
    assert got["limits"] == {"per_minute": 10}
    assert got["upstream"] == {"proxy": "http://p:1", "auto_remove_keys": False}


def test_go_style_db_flags() -> None:
    assert layer(["-db", "sqlite+aiosqlite:///a.db"])["database"] == {"url": "sqlite+aiosqlite:///a.db"}
    assert layer(["-db=sqlite+aiosqlite:///b.db"])["database"] == {"url": "sqlite+aiosqlite:///b.db"}
    # The original's only store was its built-in badger: that keeps our default database.
    assert "database" not in layer(["-db", "badger"])


@pytest.mark.parametrize("argv", [["-d", "3600"], ["-d=3600"], ["--ttl", "3600"], ["serve", "-d", "3600"]])
def test_go_style_d_is_the_conversation_lifetime_as_ttl(argv: list[str]) -> None:
    # The Go original: flag.Int64Var(&ConvDuration, "d", 1800, "time to live for conversation").
    assert layer(argv) == {"conversations": {"ttl": 3600.0}}


def test_d_3600_starts_with_that_ttl(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(cli.normalize_go_flags(["serve", "--demo", "-d", "3600"]))
    cfg = cli.load_config(args, {"ALICE_UPSTREAM_KEYS_FILE": str(tmp_path / "none.txt")})
    assert cfg.conversations.ttl == 3600
    assert cfg.database.url == "sqlite+aiosqlite:///./data/alice.db"


def test_d_with_a_database_url_points_to_db(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["-d", "sqlite+aiosqlite:///b.db"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "-d is the conversation lifetime" in err and "the database is -db URL" in err
    assert "malformed database URL" not in err


def test_bare_a_turns_auto_remove_on() -> None:
    assert layer(["-a"])["upstream"] == {"auto_remove_keys": True}
    assert layer(["-a=true"])["upstream"] == {"auto_remove_keys": True}


def test_serve_is_the_default_command() -> None:
    assert layer([]) == {}
    assert layer(["serve", "-p", "1"]) == {"server": {"port": 1}}


def test_bad_flag_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--port", "seven"])
    assert info.value.code == 2
    assert "invalid int value: 'seven'" in capsys.readouterr().err
