"""Log lines that name their request: text for people (default), or one JSON object
per line for log collectors (POLIS_LOG_FORMAT=json).

Every line carries the id of the request it was written for (``-`` outside one),
read from the request context by a filter on each handler. The access log is ours
(``polis_api.access``, written by the edge with the route template, status,
duration and tenant); uvicorn's own is turned off so no request is logged twice.
Nothing here ever writes a header, and anything shaped like a token that a message
might quote is masked on the way out.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import uvicorn.config
from uvicorn.logging import DefaultFormatter

from polis_api.auth import redact_tokens
from polis_api.edge.context import current

LogFormat = Literal["text", "json"]
ACCESS_LOGGER = "polis_api.access"
# What the edge adds to an access line (``extra=``); the JSON formatter lists them.
ACCESS_FIELDS = ("method", "route", "path", "status", "duration_ms", "client")


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``tenant`` of the request in flight to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        _add_context(record)
        return True


def _add_context(record: logging.LogRecord) -> None:
    if hasattr(record, "request_id"):
        return
    context = current()
    record.request_id = context.request_id if context else "-"
    if not hasattr(record, "tenant"):
        record.tenant = context.tenant if context else None


class TextFormatter(DefaultFormatter):
    """uvicorn's coloured level prefix, then logger, request id and message."""

    def __init__(self, fmt: str | None = None, **kwargs: Any) -> None:
        super().__init__(fmt or "%(levelprefix)s %(name)s [%(request_id)s]: %(message)s", **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        _add_context(record)  # also when a handler was set up without the filter
        return redact_tokens(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        _add_context(record)
        request_id = getattr(record, "request_id", "-")
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if request_id == "-" else request_id,
            "tenant": getattr(record, "tenant", None),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact_tokens(orjson.dumps(entry, default=str).decode())


def log_config(log_format: LogFormat, *, access_log: bool = True) -> dict[str, Any]:
    """uvicorn's logging configuration, in ``log_format``, with the app's loggers.

    The app's loggers get a handler of their own: workers are fresh processes, not
    forks, and would otherwise have none, losing their INFO lines.
    """
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    # By name: workers are spawned and import them themselves.
    formatter = {"()": f"{__name__}.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"}
    config["filters"] = {"request": {"()": f"{__name__}.RequestContextFilter"}}
    config["formatters"] = {"default": formatter, "access": formatter, "app": formatter}
    config["handlers"]["app"] = {
        "formatter": "app",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["request"]
    config["loggers"]["polis_api"] = {"handlers": ["app"], "level": "INFO", "propagate": False}
    config["loggers"][ACCESS_LOGGER] = {"level": "INFO" if access_log else "WARNING"}
    if log_format == "json":
        # Everything else (migrations, the embedded database) in the same one-line JSON.
        config["root"] = {"handlers": ["app"], "level": "INFO"}
    return config
