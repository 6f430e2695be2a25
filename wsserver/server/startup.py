"""Start-up checks: warnings about a deployment, given before it listens.

A plugin that knows of a way its users commonly misdeploy it registers a
check here when it is imported; whoever is about to serve runs every check
once and shows what they return.  Nothing above this layer then has to know
which plugins exist:

- ``serve()`` runs them for one process (``workers=1``) and logs each
  warning;
- the ``--workers`` supervisor (``wsserver/supervisor.py``) runs them for N
  processes before starting any worker and prints each one, once; the
  workers themselves do not run them again.

``Server.start()`` runs none: a program may start many servers (tests do),
and a worker's server is one of several, which it cannot know.

A check is advisory: it returns warnings and never stops the server.  One
that raises becomes a warning naming it, so that a broken plugin cannot keep
an application from starting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from .app import Application
from .config import ServerConfig

__all__ = [
    "ApplicationStartupError",
    "StartupCheck",
    "StartupContext",
    "add_startup_check",
    "remove_startup_check",
    "startup_warnings",
]


class ApplicationStartupError(Exception):
    """The application's ``startup()`` hook failed: the server did not listen.

    ``wsserver run`` prints the message and exits with status 3 (as
    uvicorn does when an ASGI application's lifespan startup fails).
    """


@dataclass(frozen=True, kw_only=True)
class StartupContext:
    """What a start-up check may look at.

    Attributes:
        app: the application about to be served.
        config: the settings every process serves it with.
        workers: how many processes will serve it (``--workers``); 1 for
            ``serve()``.  Processes share no memory, so anything a plugin
            keeps in memory reaches only one of them.
    """

    app: Application
    config: ServerConfig
    workers: int = 1


#: A start-up check: the warnings (one line each, no prefix) it has for a
#: deployment, none when all is well.
StartupCheck = Callable[[StartupContext], Iterable[str]]

_C = TypeVar("_C", bound=StartupCheck)

# Registered checks, in registration order (a dict as an ordered set: a
# check registered twice runs once).
_CHECKS: dict[StartupCheck, None] = {}


def add_startup_check(check: _C) -> _C:
    """Register ``check`` (returns it, so that it can decorate the function)."""
    _CHECKS[check] = None
    return check


def remove_startup_check(check: StartupCheck) -> None:
    """Unregister ``check``; nothing happens if it is not registered."""
    _CHECKS.pop(check, None)


def startup_warnings(context: StartupContext) -> list[str]:
    """Run every registered check on ``context``: their warnings, in order."""
    warnings: list[str] = []
    for check in list(_CHECKS):
        try:
            warnings.extend(check(context))
        except Exception as error:
            name = getattr(check, "__qualname__", repr(check))
            warnings.append(f"start-up check {name} failed: {type(error).__name__}: {error}")
    return warnings
