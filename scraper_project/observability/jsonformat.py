"""The JSON log formatter (python-json-logger), imported only when used."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter
from scrapy import Spider

__all__ = ["JsonLogFormatter"]


def _json_default(value: Any) -> Any:
    if isinstance(value, Spider):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class JsonLogFormatter(JsonFormatter):
    """``{"timestamp", "level", "logger", "message", **extra, "exc_info"?}``."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            json_default=_json_default,
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["timestamp"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(
            timespec="milliseconds"
        )
        super().add_fields(log_data, record, message_dict)
        # Scrapy adds the crawler object to some lines: not data.
        log_data.pop("crawler", None)
