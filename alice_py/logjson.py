"""``[server] log_format = "json"``: every log line one JSON object, for log collectors.

Fields: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, and while a request is
being handled its ``request_id`` (the one sent in ``X-Request-Id``), and, once a model call was
made for it, ``upstream`` and ``key`` (masked, as everywhere), and once one succeeded ``tokens``
(the upstream's ``usage``, 0 when it sent none): the access log line is then the request's usage
record. A traceback goes in ``exc``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

from alice_py.request_ids import current
from alice_py.upstream.keypool import NO_KEY_LABEL, mask_key


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        info = current()
        if info is not None:
            line["request_id"] = info.id
            if info.upstream is not None:
                line["upstream"] = info.upstream
            if info.key is not None:
                line["key"] = mask_key(info.key) if info.key else NO_KEY_LABEL
            if info.tokens is not None:
                line["tokens"] = info.tokens
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def use_json_lines() -> None:
    """Every handler of the root logger writes JSON lines from now on."""
    formatter = JsonFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
