"""``Readiness``: whether this server should be sent new clients (``/readyz``).

``/healthz`` (``App.health_path``) says the process is alive; ``/readyz``
says a load balancer may send it new connections.  It answers 503 while
the server is starting (until it listens), from the moment its shutdown
begins (SIGTERM; before the listener closes, see
``ServerConfig.drain_delay``), and while any check the application added
fails; 200 otherwise.

An application declares a dependency with ``App.add_readiness_check``
(or, holding the ``Server``, ``server.readiness.add_check``)::

    app.add_readiness_check(lambda: redis_is_up or "redis unreachable")

A check returns ``True`` when ready, and ``False`` or a reason (a ``str``,
shown in the 503's body) when not.  Checks run at each probe, on the event
loop: they must be quick and must not block (read a flag a background task
keeps, do not connect to Redis in them).  A check that raises counts as
not ready, with the exception's name as the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from enum import Enum

from .responses import PlainTextResponse, Response

__all__ = ["Readiness", "ReadinessCheck", "ServerPhase"]

logger = logging.getLogger("wsserver")

#: A check: ``True`` when ready; ``False`` or the reason when not.
ReadinessCheck = Callable[[], "bool | str"]


class ServerPhase(Enum):
    """Where the server is in its life, as readiness sees it."""

    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"


class Readiness:
    """The server's phase and the application's checks."""

    def __init__(self, app_checks: Sequence[ReadinessCheck] = ()) -> None:
        self.phase = ServerPhase.STARTING
        self._checks: list[ReadinessCheck] = []
        # The application's own list (App.readiness_checks), read at each
        # probe: checks it adds later count too.
        self._app_checks = app_checks

    def add_check(self, check: ReadinessCheck) -> None:
        """Answer 503 whenever ``check()`` returns ``False`` or a reason."""
        if not callable(check):
            raise TypeError(f"a readiness check must be callable, not {check!r}")
        self._checks.append(check)

    def remove_check(self, check: ReadinessCheck) -> None:
        """Forget a check added with ``add_check``."""
        self._checks.remove(check)

    def not_ready_because(self) -> str | None:
        """Why the server is not ready, or ``None`` when it is."""
        if self.phase is not ServerPhase.SERVING:
            return str(self.phase.value)
        for check in (*self._checks, *self._app_checks):
            try:
                result = check()
            except Exception as error:
                logger.warning("readiness check %r raised %r: answering 503", check, error)
                return f"check failed: {type(error).__name__}"
            if result is True:
                continue
            if isinstance(result, str) and result:
                return result
            return "not ready"
        return None

    @property
    def ready(self) -> bool:
        """Whether ``/readyz`` answers 200 now."""
        return self.not_ready_because() is None

    def response(self) -> Response:
        """The answer to a probe: 200 ``ready``, or 503 with the reason."""
        reason = self.not_ready_because()
        if reason is None:
            return PlainTextResponse("ready\n")
        # No caching: a probe must see the state of now.
        return PlainTextResponse(
            f"not ready: {reason}\n", status_code=503, headers={"cache-control": "no-store"}
        )
