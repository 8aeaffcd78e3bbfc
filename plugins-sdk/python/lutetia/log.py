"""Log lines, recorded by the host with the plugin's id (long lines are truncated)::

from lutetia import log
log.info("item published")
log.warn(f"slow query: {ms} ms")
"""

from __future__ import annotations

from enum import Enum

from . import _wit

__all__ = ["Level", "log", "trace", "debug", "info", "warn", "error"]


class Level(str, Enum):
    """The severity of a log line."""

    TRACE = "trace"
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


def log(level: "Level | str", message: object) -> None:
    """Writes one line at `level` (a :class:`Level` or its name); `message` goes through
    ``str()``."""
    name = Level(level.lower() if isinstance(level, str) else level).name
    module = _wit.interface("log")
    module.log(getattr(module.Level, name), str(message))


def trace(message: object) -> None:
    """Writes a line at level trace."""
    log(Level.TRACE, message)


def debug(message: object) -> None:
    """Writes a line at level debug."""
    log(Level.DEBUG, message)


def info(message: object) -> None:
    """Writes a line at level info."""
    log(Level.INFO, message)


def warn(message: object) -> None:
    """Writes a line at level warn."""
    log(Level.WARN, message)


def error(message: object) -> None:
    """Writes a line at level error."""
    log(Level.ERROR, message)
