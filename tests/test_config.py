"""Configuration: defaults < TOML < environment < flags, and a clear message for each mistake."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from alice_py import cli, config
from alice_py.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def parse(argv: list[str]) -> config.Layer:
    args = cli.build_parser().parse_args(cli.normalize_go_flags(["serve", *argv]))
    return cli.flags_layer(args)


def load(tmp_path: Path, toml: str | None, env: dict[str, str], argv: list[str]) -> config.Config:
    path = None
    if toml is not None:
        path = tmp_path / "alice.toml"
        path.write_text(toml, encoding="utf-8")
    flags = parse(argv)
    flags.setdefault("upstream", {}).setdefault("keys_file", str(tmp_path / "none.txt"))
    return config.load(str(path) if path else None, env, flags)


def test_defaults_match_the_issue(tmp_path: Path) -> None:
    cfg = load(tmp_path, None, {}, [])
    assert (cfg.server.host, cfg.server.port) == ("127.0.0.1", 7777)
    assert (cfg.auth.mode, cfg.auth.token) == ("simple", "alice")
    assert cfg.limits.per_minute == 500
    assert cfg.conversations.ttl == 1800
    assert cfg.database.url == "sqlite+aiosqlite:///./data/alice.db"
    assert cfg.upstream.base_url == "https://api.openai.com/v1"
    assert cfg.upstream.auto_remove_keys is True
    assert (cfg.models.gpt3, cfg.models.turbo, cfg.models.gpt4) == (
        "gpt-3.5-turbo-instruct",
        "gpt-4o-mini",
        "gpt-4o",
    )


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    toml = '[server]\nport = 1001\nhost = "0.0.0.0"\n[auth]\ntoken = "from-file"\nmode = "none"\n'
    cfg = load(tmp_path, toml, {}, [])
    assert (cfg.server.port, cfg.server.host, cfg.auth.token) == (1001, "0.0.0.0", "from-file")
    env = {"ALICE_SERVER_PORT": "1002", "ALICE_AUTH_TOKEN": "from-env"}
    cfg = load(tmp_path, toml, env, [])
    assert (cfg.server.port, cfg.server.host, cfg.auth.token) == (1002, "0.0.0.0", "from-env")
    cfg = load(tmp_path, toml, env, ["--port", "1003"])
    assert (cfg.server.port, cfg.auth.token, cfg.auth.mode) == (1003, "from-env", "none")


def test_environment_types(tmp_path: Path) -> None:
    env = {
        "ALICE_UPSTREAM_KEYS": "sk-one, sk-two",
        "ALICE_UPSTREAM_AUTO_REMOVE_KEYS": "false",
        "ALICE_CONVERSATIONS_TTL": "60.5",
        "ALICE_MODELS_ALIASES": "gpt-4=gpt-4o,gpt-3.5-turbo=gpt-4o-mini",
        "OPENAI_API_KEY": "sk-three",
    }
    cfg = load(tmp_path, None, env, [])
    assert cfg.upstream.keys == ("sk-one", "sk-two", "sk-three")
    assert cfg.upstream.auto_remove_keys is False
    assert cfg.conversations.ttl == 60.5
    assert cfg.models.aliases == {"gpt-4": "gpt-4o", "gpt-3.5-turbo": "gpt-4o-mini"}


def test_key_file_ignores_blank_lines_and_spaces(tmp_path: Path) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_text("  sk-aaa  \n\n\nsk-bbb\r\n   \nsk-aaa\n", encoding="utf-8")
    cfg = load(tmp_path, None, {"OPENAI_API_KEY": "sk-env"}, ["--keys-file", str(key_file)])
    assert cfg.upstream.keys == ("sk-aaa", "sk-bbb", "sk-env")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nprot = 1\n", "unknown key 'prot' in [server]"),
        ("[servr]\nport = 1\n", "unknown section [servr]"),
        ('[server]\nport = "80"\n', "[server] port must be an integer, got str"),
        ("[auth]\ntoken = 5\n", "[auth] token must be a string, got int"),
        ('[upstream]\nkeys = "sk-a"\n', "[upstream] keys must be a list of strings, got str"),
        ("[upstream]\nauto_remove_keys = 1\n", "[upstream] auto_remove_keys must be a boolean, got int"),
        ("[server\n", "not valid TOML"),
        ('[auth]\nmode = "open"\n', "auth mode must be one of none, simple, normal, got 'open'"),
    ],
)
def test_file_mistakes_name_file_key_and_type(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml, {}, [])
    assert message in str(info.value)
    if "mode must be" not in message:
        assert "alice.toml" in str(info.value)


def test_environment_mistake_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ALICE_SERVER_PORT must be an integer"):
        load(tmp_path, None, {"ALICE_SERVER_PORT": "seven"}, [])


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(str(tmp_path / "nope.toml"), {}, {})


def test_example_file_documents_every_key_with_its_default() -> None:
    """config.example.toml loads, names every key of every section, and shows the defaults."""
    example = ROOT / "config.example.toml"
    layer = config.read_toml(example)
    for section, keys in config.key_types().items():
        assert section in layer, f"[{section}] missing from config.example.toml"
        assert set(layer[section]) == set(keys), f"[{section}] keys differ from the code"
    built = config.Config().replace(**layer)
    assert dataclasses.asdict(built) == dataclasses.asdict(config.Config())
    text = example.read_text(encoding="utf-8")
    for section in layer:
        block = text.split(f"[{section}]", 1)[1]
        assert block.lstrip().startswith("#") or "\n#" in block.split("[", 1)[0], section


def test_mask_url_hides_password() -> None:
    assert config.mask_url("postgresql+asyncpg://bob:s3cret@db/x") == "postgresql+asyncpg://bob:***@db/x"
    assert config.mask_url("sqlite+aiosqlite:///./data/alice.db") == "sqlite+aiosqlite:///./data/alice.db"


def test_demo_runs_with_auth_off_unless_a_secret_or_mode_is_set(tmp_path: Path) -> None:
    assert load(tmp_path, None, {}, ["--demo"]).auth.mode == "none"
    assert load(tmp_path, None, {"ALICE_UPSTREAM_DEMO": "true"}, []).auth.mode == "none"
    # Any explicit choice, in any layer, keeps auth as configured.
    assert load(tmp_path, None, {}, ["--demo", "-t", "s3cret"]).auth.mode == "simple"
    assert load(tmp_path, None, {}, ["--demo", "--auth", "simple"]).auth.mode == "simple"
    assert load(tmp_path, None, {"ALICE_AUTH_MODE": "normal"}, ["--demo"]).auth.mode == "normal"
    assert load(tmp_path, '[auth]\ntoken = "s3cret"\n', {}, ["--demo"]).auth.mode == "simple"
    assert load(tmp_path, '[openai]\nclient_keys = ["ck"]\n', {}, ["--demo"]).auth.mode == "simple"
    assert load(tmp_path, None, {}, []).auth.mode == "simple"  # not a demo: the default


def test_auth_replay_policies(tmp_path: Path) -> None:
    assert load(tmp_path, None, {}, []).auth.replay == "strict"
    assert load(tmp_path, '[auth]\nreplay = "original"\n', {}, []).auth.replay == "original"
    with pytest.raises(ConfigError, match="auth replay must be one of strict, original, got 'loose'"):
        load(tmp_path, None, {"ALICE_AUTH_REPLAY": "loose"}, [])


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[server]\ntrusted_proxies = ["10.0.0.0/8", "proxy.local"]\n', "'proxy.local' is not an IP address"),
        ("[server]\nbody_timeout = 0\n", "server body_timeout must be more than 0 seconds"),
    ],
)
def test_server_hardening_mistakes_are_named(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, toml, {}, [])


def test_the_redis_store_is_accepted_and_a_lease_past_a_minute_is_refused(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[conversations]\nstore = "redis"\nkey_prefix = "a1:"\n', {}, [])
    assert (cfg.conversations.store, cfg.conversations.key_prefix) == ("redis", "a1:")
    with pytest.raises(ConfigError, match="lock_lease must be more than 0 and at most 60 seconds"):
        load(tmp_path, "[conversations]\nlock_lease = 61\n", {}, [])


@pytest.mark.parametrize(("section", "key", "least", "above", "what"), config.MINIMUMS)
def test_every_lower_bound_refuses_below_it_and_names_the_key(
    tmp_path: Path, section: str, key: str, least: float, above: bool, what: str
) -> None:
    refused = least if above else least - 1
    with pytest.raises(ConfigError, match=re.escape(f"{section} {key} must be {what}")):
        load(tmp_path, f"[{section}]\n{key} = {refused}\n", {}, [])
    allowed = least + 1 if above else least
    cfg = load(tmp_path, f"[{section}]\n{key} = {allowed}\n", {}, [])
    assert getattr(getattr(cfg, section), key) == allowed
