"""``JsonFormatter``: one JSON object per log line (``--log-format json``).

For log collectors (Loki, Elasticsearch, CloudWatch...) that index fields
rather than parse text.  Each line holds ``time`` (ISO 8601, UTC, with
milliseconds), ``level``, ``logger``, ``message`` (formatted as in the text
format), ``process``, ``worker`` (with ``--workers``), ``exception`` (the
traceback, when there is one), and every field the call passed with
``extra=``: the access log's (``client``, ``method``, ``path``,
``http_version``, ``status_code``, ``duration_ms``, ``connection_id``;
``wsserver.server.access``) and the connection-end line's (``connection_id``,
``client``, ``path``, ``close_code``, ``close_reason``, ``closed_by``,
``duration_ms``, ``bytes_in``, ``bytes_out``).  A value JSON cannot hold is
written as its ``repr``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

__all__ = ["JsonFormatter"]

# What every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """Formats each record as one line of JSON.

    Args:
        worker: the worker's index with ``--workers N``, added to each line.
    """

    def __init__(self, worker: str | None = None) -> None:
        super().__init__()
        self._worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if self._worker is not None:
            entry["worker"] = self._worker
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in entry:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # One line whatever the message holds: json.dumps escapes newlines.
        return json.dumps(entry, ensure_ascii=False, default=repr)
