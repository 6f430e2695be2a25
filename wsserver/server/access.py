"""The access log: one INFO line per HTTP request and per WebSocket handshake.

Lines go to the ``wsserver.access`` logger, in uvicorn's shape with the
duration added::

    127.0.0.1:51234 - "GET /chat?room=1 HTTP/1.1" 101 2.1ms

client address, request line (method, target with its query, HTTP version),
status, and the time from the moment the server had the whole request to
the moment its answer was handed to the transport.  A request the protocol
core refused before it could be read (a malformed head) has ``"-"`` for its
request line, as Apache's ``%r`` does; a client address the transport does
not know (a Unix socket) is ``-``.

Every field is also on the record as an attribute (``extra=``), named in
``ACCESS_FIELDS``, so that a structured (JSON) formatter needs no parsing:
``client`` (``"host:port"``), ``method``, ``path`` (the target, query
included), ``http_version`` (``"1.1"``), ``status_code``, ``duration_ms``
and ``connection_id`` (the id of the ``conn N`` lines).  Unknown values are
``None``.

For an accepted WebSocket the line is written at the 101, once per
handshake: nothing here runs per message.  Nothing is formatted when the
logger is not enabled for INFO (or ``ServerConfig.access_log`` is off,
which the connection checks before calling).
"""

from __future__ import annotations

import logging
import time

from .datastructures import Address

__all__ = ["ACCESS_FIELDS", "access_logger", "log_access"]

access_logger = logging.getLogger("wsserver.access")

#: The attributes every access record carries, for structured formatters.
ACCESS_FIELDS = (
    "client",
    "method",
    "path",
    "http_version",
    "status_code",
    "duration_ms",
    "connection_id",
)


def log_access(
    *,
    client: Address | None,
    method: str | None,
    path: str | None,
    http_version: str | None,
    status_code: int,
    started: float,
    connection_id: int,
) -> None:
    """Write one access line, unless the logger is off for INFO.

    Args:
        client: the peer's address, if known.
        method, path, http_version: the request line; ``None`` when the
            core refused the request before it could be read.
        status_code: the status sent (101 for an accepted WebSocket).
        started: ``time.perf_counter()`` when the server had the request.
        connection_id: the connection's id.
    """
    if not access_logger.isEnabledFor(logging.INFO):
        return
    duration_ms = round((time.perf_counter() - started) * 1000.0, 3)
    peer = f"{client[0]}:{client[1]}" if client is not None else None
    request_line = f"{method} {path} HTTP/{http_version}" if method is not None else "-"
    access_logger.info(
        '%s - "%s" %d %.1fms',
        peer or "-",
        request_line,
        status_code,
        duration_ms,
        extra={
            "client": peer,
            "method": method,
            "path": path,
            "http_version": http_version,
            "status_code": status_code,
            "duration_ms": duration_ms,
            "connection_id": connection_id,
        },
    )
