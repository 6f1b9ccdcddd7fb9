"""Structured logs: ``key=value`` pairs (or one JSON object per line).

Every call names its component; record keys are passed as fields so that
operators can grep for them. Callers never pass secrets or full ID numbers:
:func:`mask_id` keeps the first 6 and last 4 characters.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_ROOT = "gridhub"


def mask_id(id_number: str | None) -> str:
    """A 公民身份号码 as first 6 + last 4, the form allowed in logs and dashboards."""
    if not id_number:
        return ""
    if len(id_number) <= 10:
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


class StructuredLogger:
    """A thin wrapper that turns keyword arguments into structured fields."""

    def __init__(self, component: str) -> None:
        self.component = component
        self._logger = logging.getLogger(f"{_ROOT}.{component}")

    def _log(self, level: int, message: str, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, message, extra={"fields": fields, "component": self.component})

    def debug(self, message: str, **fields: Any) -> None:
        """Log at DEBUG."""
        self._log(logging.DEBUG, message, fields)

    def info(self, message: str, **fields: Any) -> None:
        """Log at INFO."""
        self._log(logging.INFO, message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        """Log at WARNING."""
        self._log(logging.WARNING, message, fields)

    def error(self, message: str, **fields: Any) -> None:
        """Log at ERROR."""
        self._log(logging.ERROR, message, fields)


def get_logger(component: str) -> StructuredLogger:
    """The logger of one component (``connectors.police``, ``streams.sink``...)."""
    return StructuredLogger(component)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        component = getattr(record, "component", record.name)
        pairs = " ".join(f"{key}={value}" for key, value in fields.items())
        line = f"{stamp[:-4]}Z {record.levelname:<7} {component}: {record.getMessage()}"
        line = f"{line} {pairs}" if pairs else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "component": getattr(record, "component", record.name),
            "message": record.getMessage(),
        }
        body.update(getattr(record, "fields", {}))
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False, default=str)


def configure_logging(*, json_lines: bool = False, level: int = logging.INFO) -> None:
    """Send gridhub's logs to stderr, and quieten the libraries' chatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if json_lines else _TextFormatter())
    root = logging.getLogger(_ROOT)
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if json_lines:  # the libraries' warnings too, so that a log collector reads every line
        logging.getLogger().handlers[:] = [handler]
    for name, existing in logging.Logger.manager.loggerDict.items():
        # a library's dictConfig (Faust's worker) may have disabled loggers made earlier
        if name.startswith(_ROOT) and isinstance(existing, logging.Logger):
            existing.disabled = False
    for noisy in ("kafka", "aiokafka", "faust", "mode", "clickhouse_connect", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
