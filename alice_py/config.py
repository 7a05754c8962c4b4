"""One frozen configuration object, built once and passed in.

Layers, in rising priority: the defaults below, a TOML file, the environment
(``ALICE_<SECTION>_<KEY>``, and ``OPENAI_API_KEY`` as one more upstream key),
command-line flags. Every key is documented in ``config.example.toml``.
No other module reads the environment.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alice_py.errors import ConfigError

AUTH_MODES = ("none", "simple", "normal")
REPLAY_POLICIES = ("strict", "original")
STORE_BACKENDS = ("memory", "redis")
MAX_LEASE = 60.0
"""Longest lock lease: a killed instance must free its conversations within a minute."""
DEFAULT_TOKEN = "alice"
DEMO_KEY = "sk-demo-0000000000000000"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7777
    cors_origins: tuple[str, ...] = ("*",)
    max_body: int = 1024 * 1024
    drain_timeout: float = 30.0
    compat_status: bool = False
    access_log: bool = False
    body_timeout: float = 30.0
    trusted_proxies: tuple[str, ...] = ()
    workers: int = 1
    log_format: str = "text"


@dataclass(frozen=True, slots=True)
class AuthConfig:
    mode: str = "simple"
    token: str = DEFAULT_TOKEN
    replay: str = "strict"


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    per_minute: int = 500
    per_client: int = 0


@dataclass(frozen=True, slots=True)
class ConversationsConfig:
    ttl: float = 1800.0
    max_live: int = 100_000
    store: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    write_behind: float = 5.0
    max_bytes: int = 1024 * 1024
    key_prefix: str = "alice:"
    lock_lease: float = 15.0


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///./data/alice.db"
    check_interval: float = 10.0


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    base_url: str = "https://api.openai.com/v1"
    keys: tuple[str, ...] = ()
    keys_file: str = "./key.txt"
    proxy: str = ""
    connect_timeout: float = 10.0
    timeout: float = 300.0
    auto_remove_keys: bool = True
    demo: bool = False
    require_finish_reason: bool = True


@dataclass(frozen=True, slots=True)
class UpstreamEntry:
    """One ``[[upstreams]]`` table, resolved: its keys gathered, its timeouts and proxy
    defaulting to ``[upstream]``'s."""

    name: str
    base_url: str
    keys: tuple[str, ...] = ()
    keys_file: str = ""
    models: tuple[str, ...] = ("*",)
    priority: int = 0
    weight: int = 1
    proxy: str = ""
    connect_timeout: float = 10.0
    timeout: float = 300.0


UPSTREAM_ENTRY_TYPES: dict[str, Any] = {
    "name": str,
    "base_url": str,
    "keys": tuple[str, ...],
    "keys_file": str,
    "models": tuple[str, ...],
    "priority": int,
    "weight": int,
    "proxy": str,
    "connect_timeout": float,
    "timeout": float,
}
"""The keys an ``[[upstreams]]`` table may have, with their types."""
LIST_SECTIONS = ("upstreams",)
"""Config fields that are TOML arrays of tables (``[[upstreams]]``), not sections."""


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    max_attempts: int = 3
    deadline: float = 60.0
    wait_for_key: float = 5.0


@dataclass(frozen=True, slots=True)
class KeysConfig:
    fail_threshold: int = 3
    fail_window: float = 60.0
    probe_interval: float = 60.0


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    token: str = ""


@dataclass(frozen=True, slots=True)
class ModelsConfig:
    gpt3: str = "gpt-3.5-turbo-instruct"
    turbo: str = "gpt-4o-mini"
    gpt4: str = "gpt-4o"
    aliases: Mapping[str, str] = field(default_factory=dict)
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AdminConfig:
    password: str = ""
    session_secret: str = ""


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    client_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeConfig:
    prompt_prefix: str = ""
    user_label: str = "User"
    chatgpt_label: str = "ChatGPT"
    generate_titles: bool = False
    client_options: tuple[str, ...] = ()


NODE_CLIENT_OPTIONS = ("promptPrefix", "userLabel", "chatGptLabel", "modelOptions")
"""node-chatgpt-api's per-message ``clientOptions`` that ``[node] client_options`` may allow
(``modelOptions.<field>`` allows one field of ``modelOptions``)."""


@dataclass(frozen=True, slots=True)
class RelayConfig:
    authorization_key: str = ""


@dataclass(frozen=True, slots=True)
class SharesConfig:
    separate_ids: bool = False


CONTEXT_POLICIES = ("drop_oldest", "summarize", "error")
CONTEXT_ENCODINGS = ("o200k_base", "cl100k_base")
"""The tiktoken encodings shipped in ``alice_py/engine/encodings`` (``engine.tokens``)."""


@dataclass(frozen=True, slots=True)
class ContextConfig:
    policy: str = "drop_oldest"
    default_window: int = 8192
    windows: Mapping[str, int] = field(default_factory=dict)
    reserve: int = 1024
    default_encoding: str = "o200k_base"


@dataclass(frozen=True, slots=True)
class ResponsesConfig:
    retention_days: float = 30.0


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    conversations: ConversationsConfig = field(default_factory=ConversationsConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    node: NodeConfig = field(default_factory=NodeConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    shares: SharesConfig = field(default_factory=SharesConfig)
    responses: ResponsesConfig = field(default_factory=ResponsesConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    upstreams: tuple[UpstreamEntry, ...] = ()
    """``[[upstreams]]``; empty: the one upstream of ``[upstream]`` (see ``upstream_entries``)."""
    context: ContextConfig = field(default_factory=ContextConfig)

    def replace(self, **sections: Mapping[str, Any]) -> Config:
        """A copy with some keys of some sections changed: ``cfg.replace(auth={"mode": "none"})``."""
        changed = {
            name: dataclasses.replace(getattr(self, name), **values) for name, values in sections.items()
        }
        return dataclasses.replace(self, **changed)


Layer = dict[str, dict[str, Any]]
"""Raw values by section and key, as one source gave them."""


def key_types() -> dict[str, dict[str, Any]]:
    """The expected type of every key, by section: ``{"server": {"port": int, ...}}``."""
    result: dict[str, dict[str, Any]] = {}
    for section in dataclasses.fields(Config):
        if section.name in LIST_SECTIONS:
            continue
        cls = typing.get_type_hints(Config)[section.name]
        hints = typing.get_type_hints(cls)
        result[section.name] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return result


def _type_name(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin is tuple:
        return "a list of strings"
    if origin in (Mapping, dict):
        return "a table of integers" if typing.get_args(expected)[1] is int else "a table of strings"
    return {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}[expected]


def _check_toml_value(expected: Any, value: Any) -> Any:
    """The value converted to the field's type, or ``ValueError`` if it has the wrong type."""
    origin = typing.get_origin(expected)
    if origin is tuple:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif origin in (Mapping, dict):
        item = typing.get_args(expected)[1]
        if isinstance(value, dict) and all(
            isinstance(v, item) and not isinstance(v, bool) for v in value.values()
        ):
            return dict(value)
    elif expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif expected is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif expected is str and isinstance(value, str):
        return value
    raise ValueError(_type_name(expected))


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_text_value(expected: Any, text: str) -> Any:
    """An environment or flag string converted to the field's type (``ValueError`` if it can't be)."""
    origin = typing.get_origin(expected)
    if origin is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if origin in (Mapping, dict):
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("name=value pairs separated by commas")
        item = typing.get_args(expected)[1]
        try:
            return {name.strip(): item(value.strip()) for name, value in pairs}
        except ValueError:
            raise ValueError("name=integer pairs separated by commas") from None
    if expected is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(_type_name(bool))
    try:
        return expected(text.strip())
    except ValueError:
        raise ValueError(_type_name(expected)) from None


def read_toml(path: Path) -> Layer:
    """The file's values, checked against the known sections, keys and types."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    types_ = key_types()
    layer: Layer = {}
    for section, values in raw.items():
        if section == "upstreams":
            layer["upstreams"] = {"entries": _read_upstream_tables(path, values)}
            continue
        if section not in types_:
            raise ConfigError(f"{path}: unknown section [{section}]")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        for key, value in values.items():
            if key not in types_[section]:
                raise ConfigError(f"{path}: unknown key {key!r} in [{section}]")
            try:
                converted = _check_toml_value(types_[section][key], value)
            except ValueError as exc:
                raise ConfigError(
                    f"{path}: [{section}] {key} must be {exc}, got {type(value).__name__}"
                ) from None
            layer.setdefault(section, {})[key] = converted
    return layer


def _read_upstream_tables(path: Path, tables: Any) -> tuple[dict[str, Any], ...]:
    """The ``[[upstreams]]`` tables, each key checked against ``UPSTREAM_ENTRY_TYPES``."""
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise ConfigError(f"{path}: upstreams must be tables ([[upstreams]])")
    entries: list[dict[str, Any]] = []
    for number, table in enumerate(tables, 1):
        entry: dict[str, Any] = {}
        for key, value in table.items():
            if key not in UPSTREAM_ENTRY_TYPES:
                raise ConfigError(f"{path}: unknown key {key!r} in [[upstreams]] number {number}")
            try:
                entry[key] = _check_toml_value(UPSTREAM_ENTRY_TYPES[key], value)
            except ValueError as exc:
                raise ConfigError(
                    f"{path}: [[upstreams]] number {number}: {key} must be {exc}, got {type(value).__name__}"
                ) from None
        for required in ("name", "base_url"):
            if not entry.get(required):
                raise ConfigError(f"{path}: [[upstreams]] number {number} needs a {required}")
        entries.append(entry)
    return tuple(entries)


def read_environment(environ: Mapping[str, str]) -> Layer:
    """``ALICE_<SECTION>_<KEY>`` variables; ``OPENAI_API_KEY`` becomes one more key."""
    types_ = key_types()
    layer: Layer = {}
    for section, keys in types_.items():
        for key, expected in keys.items():
            name = f"ALICE_{section}_{key}".upper()
            if name not in environ:
                continue
            try:
                layer.setdefault(section, {})[key] = parse_text_value(expected, environ[name])
            except ValueError as exc:
                raise ConfigError(f"environment variable {name} must be {exc}") from None
    openai_key = environ.get("OPENAI_API_KEY", "").strip()
    if openai_key:
        upstream = layer.setdefault("upstream", {})
        upstream["extra_keys"] = (openai_key,)
    return layer


def merge(*layers: Layer) -> Layer:
    merged: Layer = {}
    for layer in layers:
        for section, values in layer.items():
            merged.setdefault(section, {}).update(values)
    return merged


def read_keys_file(path: Path) -> tuple[str, ...]:
    """One key per line; blank lines and surrounding spaces ignored; a missing file has none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the key file: {exc}") from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def build(layer: Layer) -> Config:
    """The frozen config from merged layers; the upstream keys gathered from every source."""
    values = {section: dict(keys) for section, keys in layer.items()}
    upstream = values.setdefault("upstream", {})
    extra = tuple(upstream.pop("extra_keys", ()))
    tables = values.pop("upstreams", {}).get("entries", ())
    cfg = Config().replace(**values)
    if tables:
        # [[upstreams]] replaces [upstream]: its default base_url and key.txt, and
        # OPENAI_API_KEY, add no upstream and no key of their own.
        cfg = dataclasses.replace(cfg, upstreams=tuple(_resolve_upstream(cfg, table) for table in tables))
    else:
        keys = cfg.upstream.keys + read_keys_file(Path(cfg.upstream.keys_file)) + extra
        cfg = cfg.replace(upstream={"keys": tuple(dict.fromkeys(keys))})
    if demo_opens_auth(cfg, layer):
        cfg = cfg.replace(auth={"mode": "none"})
    validate(cfg)
    return cfg


def _resolve_upstream(cfg: Config, table: Mapping[str, Any]) -> UpstreamEntry:
    defaults = {
        "proxy": cfg.upstream.proxy,
        "connect_timeout": cfg.upstream.connect_timeout,
        "timeout": cfg.upstream.timeout,
    }
    entry = UpstreamEntry(**{**defaults, **table})
    keys = entry.keys + (read_keys_file(Path(entry.keys_file)) if entry.keys_file else ())
    return dataclasses.replace(entry, keys=tuple(dict.fromkeys(key.strip() for key in keys if key.strip())))


def upstream_entries(cfg: Config) -> tuple[UpstreamEntry, ...]:
    """The upstreams to route to: ``[[upstreams]]``, or ``[upstream]`` as one named "default"."""
    if cfg.upstreams:
        return cfg.upstreams
    up = cfg.upstream
    return (
        UpstreamEntry(
            name="default",
            base_url=up.base_url,
            keys=up.keys,
            keys_file=up.keys_file,
            proxy=up.proxy,
            connect_timeout=up.connect_timeout,
            timeout=up.timeout,
        ),
    )


def demo_opens_auth(cfg: Config, layer: Layer) -> bool:
    """``--demo`` with no secret chosen anywhere runs with auth mode ``none``: the demo model has
    no key to protect, and the playground (which is never served the secret) must answer its
    first message. A mode, token or client key set in any layer keeps auth as configured."""
    chosen = set(layer.get("auth", {})) & {"mode", "token"} or layer.get("openai", {}).get("client_keys")
    return cfg.upstream.demo and not chosen


def validate(cfg: Config) -> None:
    if not cfg.responses.retention_days > 0:
        raise ConfigError(f"responses retention_days must be more than 0, got {cfg.responses.retention_days}")
    if cfg.auth.mode not in AUTH_MODES:
        raise ConfigError(f"auth mode must be one of {', '.join(AUTH_MODES)}, got {cfg.auth.mode!r}")
    if cfg.auth.replay not in REPLAY_POLICIES:
        raise ConfigError(f"auth replay must be one of {', '.join(REPLAY_POLICIES)}, got {cfg.auth.replay!r}")
    if cfg.conversations.store not in STORE_BACKENDS:
        raise ConfigError(
            f"conversations store must be one of {', '.join(STORE_BACKENDS)}, got {cfg.conversations.store!r}"
        )
    if not 0 < cfg.conversations.lock_lease <= MAX_LEASE:
        raise ConfigError(f"conversations lock_lease must be more than 0 and at most {MAX_LEASE:g} seconds")
    if cfg.server.workers < 1:
        raise ConfigError(f"server workers must be 1 or more, got {cfg.server.workers}")
    if cfg.server.workers > 1 and cfg.conversations.store == "memory":
        raise ConfigError(
            f"{cfg.server.workers} workers need the shared Redis store: set [conversations] "
            'store = "redis" (and redis_url), or run one worker (the memory store is one process\'s)'
        )
    if not 0 < cfg.server.port < 65536:
        raise ConfigError(f"port must be between 1 and 65535, got {cfg.server.port}")
    for entry in cfg.server.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"server trusted_proxies: {entry!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    for section, key, least, above, what in MINIMUMS:
        value = getattr(getattr(cfg, section), key)
        if value < least or (above and value == least):
            raise ConfigError(f"{section} {key} must be {what}")
    _validate_routing(cfg)
    _validate_context(cfg)
    for name in cfg.node.client_options:
        head, dot, tail = name.partition(".")
        if head not in NODE_CLIENT_OPTIONS or (dot and (head != "modelOptions" or not tail.isidentifier())):
            raise ConfigError(
                f"node client_options: {name!r} is not one of {', '.join(NODE_CLIENT_OPTIONS)} "
                "or modelOptions.<field>"
            )


LOG_FORMATS = ("text", "json")
MINIMUMS: tuple[tuple[str, str, float, bool, str], ...] = (
    # section, key, the least value, whether it must be above it, what the message says
    ("limits", "per_minute", 0, False, "0 (off) or more"),
    ("limits", "per_client", 0, False, "0 (off) or more"),
    ("database", "check_interval", 0, True, "more than 0 seconds"),
    ("conversations", "max_bytes", 0, False, "0 (no limit) or more"),
    ("conversations", "ttl", 0, True, "more than 0 seconds"),
    ("server", "body_timeout", 0, True, "more than 0 seconds"),
    ("routing", "max_attempts", 1, False, "1 or more"),
    ("routing", "deadline", 0, True, "more than 0 seconds"),
    ("routing", "wait_for_key", 0, False, "0 (do not wait) or more seconds"),
    ("keys", "fail_threshold", 1, False, "1 or more"),
    ("keys", "fail_window", 0, True, "more than 0 seconds"),
    ("keys", "probe_interval", 0, False, "0 (no probes) or more seconds"),
)
"""The numbers with a lower bound, checked alike (``validate``)."""


def _validate_routing(cfg: Config) -> None:
    if cfg.server.log_format not in LOG_FORMATS:
        raise ConfigError(
            f"server log_format must be one of {', '.join(LOG_FORMATS)}, got {cfg.server.log_format!r}"
        )
    names = [entry.name for entry in cfg.upstreams]
    for entry in cfg.upstreams:
        if names.count(entry.name) > 1:
            raise ConfigError(f"upstreams: the name {entry.name!r} is used twice")
        if entry.weight < 1:
            raise ConfigError(f"upstreams {entry.name!r}: weight must be 1 or more")
        if not entry.models:
            raise ConfigError(f'upstreams {entry.name!r}: models is empty ("*" serves any model)')
        if not entry.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"upstreams {entry.name!r}: base_url must start with http:// or https://")
def _validate_context(cfg: Config) -> None:
    context = cfg.context
    if context.policy not in CONTEXT_POLICIES:
        raise ConfigError(
            f"context policy must be one of {', '.join(CONTEXT_POLICIES)}, got {context.policy!r}"
        )
    if context.default_window <= 0:
        raise ConfigError("context default_window must be more than 0 tokens")
    for model, window in context.windows.items():
        if window <= 0:
            raise ConfigError(f"context windows: {model} must be more than 0 tokens, got {window}")
    if context.reserve < 0:
        raise ConfigError("context reserve must be 0 or more tokens")
    if context.default_encoding not in CONTEXT_ENCODINGS:
        raise ConfigError(
            f"context default_encoding must be one of {', '.join(CONTEXT_ENCODINGS)}, "
            f"got {context.default_encoding!r}"
        )


def load(
    config_file: str | None,
    environ: Mapping[str, str],
    flags: Layer,
) -> Config:
    """defaults < TOML file < environment < flags."""
    file_layer = read_toml(Path(config_file)) if config_file else {}
    return build(merge(file_layer, read_environment(environ), flags))


def mask_url(url: str) -> str:
    """A database or proxy URL fit for a log line: the password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}"


def needs_keys_message() -> str:
    return "no API key: put keys in key.txt, set OPENAI_API_KEY, or run with --demo"


__all__ = ["Config", "ConfigError", "build", "load"]
