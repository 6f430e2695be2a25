"""Command-line options that plugins contribute, found through entry points.

Some settings belong to a plugin and must be known before the application is
imported, because the application builds the plugin's objects at import
time (the channel manager reads its backend URL then).  Such a setting is an
environment variable, and the plugin declares the option that sets it as an
``EnvironmentOption``, published in its distribution's metadata::

    [project.entry-points."wsserver.options"]
    channels-backend = "wsserver.plugins.channels.backends:BACKEND_OPTION"

``wsserver run`` adds one flag per declared option, checks the value with the
option's ``check`` (a bad value is a usage error: exit status 2 and one
line), and sets the variable before it imports the application.  The
command line then knows no plugin by name, and a plugin from another
distribution can add its option the same way.

An entry point that fails to load, or names something other than an
``EnvironmentOption``, is left out with one log line: a broken plugin must
not keep every other application from starting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

__all__ = ["ENTRY_POINT_GROUP", "EnvironmentOption", "plugin_options"]

logger = logging.getLogger("wsserver")

#: The entry-point group a distribution publishes its options under.
ENTRY_POINT_GROUP = "wsserver.options"


@dataclass(frozen=True, kw_only=True)
class EnvironmentOption:
    """One command-line flag that sets one environment variable.

    Attributes:
        flag: the option, ``--name``.
        env_var: the variable it sets, before the application is imported.
        help: the help text (``wsserver run --help``).
        metavar: what the value is called in the help text.
        check: raises ``ValueError`` with a one-line message for a value
            the plugin cannot use (what it returns is ignored); ``None``
            accepts any value.
    """

    flag: str
    env_var: str
    help: str
    metavar: str = "VALUE"
    check: Callable[[str], object] | None = None

    def __post_init__(self) -> None:
        if not self.flag.startswith("--") or len(self.flag) < 3:
            raise ValueError(f"an option's flag starts with '--': {self.flag!r}")
        if not self.env_var:
            raise ValueError(f"option {self.flag} names no environment variable")

    @property
    def dest(self) -> str:
        """The attribute argparse stores the value under."""
        return self.flag[2:].replace("-", "_")


def plugin_options(group: str = ENTRY_POINT_GROUP) -> list[EnvironmentOption]:
    """Every option published under ``group``, sorted by flag."""
    found: dict[str, EnvironmentOption] = {}
    for entry in entry_points(group=group):
        try:
            option = entry.load()
        except Exception as error:
            logger.warning(
                "command-line option %r (%s) cannot be loaded: %s: %s",
                entry.name,
                entry.value,
                type(error).__name__,
                error,
            )
            continue
        if not isinstance(option, EnvironmentOption):
            logger.warning(
                "command-line option %r (%s) is a %s, not an EnvironmentOption; left out",
                entry.name,
                entry.value,
                type(option).__name__,
            )
            continue
        # A distribution installed twice (editable and not) lists its entry
        # points twice: one flag, once.
        found.setdefault(option.flag, option)
    return [found[flag] for flag in sorted(found)]
