"""Log lines of the long-running agent: JSON for log collectors, text for people.

Records carry their structured data in ``extra={"fields": {...}}`` (resource, error,
reason...). Both formats print every field: JSON as keys of the object, text as
``key=value`` pairs after the message (values with spaces or quotes are JSON-quoted).
"""
from __future__ import annotations

import datetime
import json
import logging
from typing import Any

__all__ = ("JsonLogFormatter", "TextLogFormatter")


def _fields(record: logging.LogRecord) -> dict:
    return getattr(record, "fields", None) or {}


def _utc(record: logging.LogRecord) -> str:
    return datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": _utc(record), "level": record.levelname.lower(),
               "logger": record.name, "msg": record.getMessage()}
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        plain = value and not any(c.isspace() or c in '"=\\' for c in value)
        return value if plain else json.dumps(value)
    return json.dumps(value, default=str, separators=(",", ":"))


class TextLogFormatter(logging.Formatter):
    """``TIME LEVEL logger: message key=value ...`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_utc(record), record.levelname, f"{record.name}:", record.getMessage()]
        parts += [f"{k}={_text_value(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line
