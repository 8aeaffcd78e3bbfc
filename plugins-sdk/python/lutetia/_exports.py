"""The four export classes componentize-py instantiates: they adapt the generated
protocols (``wit_world.exports``) to the plugin registered with :func:`lutetia.export`.

The build's entry module (``lutetia_main.py``) imports the plugin's ``app`` module, then
these classes; plugin code never uses them. Only importable inside a component build.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Optional

from componentize_py_types import Err
from wit_world import exports as _wit_exports
from wit_world.imports import types as _types

from . import log
from .errors import ServiceError
from .events import Event, Job
from .plugin import exported
from .reply import to_wit
from .request import Request

__all__ = ["Handler", "Subscriber", "Scheduler", "Lifecycle"]


def _as_result(what: str, run: Callable[[], Any]) -> None:
    """Runs a hook; any exception becomes the ``Err(str)`` result the host records."""
    try:
        run()
    except Err:
        raise
    except ServiceError as e:  # a host service failed: its message says it all
        raise Err(f"{what} failed: {e.code}: {e.message}") from None
    except Exception as e:  # noqa: BLE001 - every plugin failure is reported, not trapped
        detail = "".join(traceback.format_exception_only(type(e), e)).strip()
        _log_traceback(what, e)
        raise Err(f"{what} failed: {detail}") from None


def _log_traceback(what: str, e: BaseException) -> None:
    try:
        log.warn(
            f"{what} raised:\n" + "".join(traceback.format_exception(type(e), e, e.__traceback__))
        )
    except Exception:  # noqa: BLE001 - logging must not hide the original error
        pass


class Handler(_wit_exports.Handler):
    """``lutetia:plugin/handler``: calls the plugin's ``handle``. Exceptions are not
    caught: they trap the instance, and the host answers a 500 and logs the traceback."""

    def handle(self, request: _types.Request) -> _types.Reply:
        reply = exported().handle(Request._from_wit(request))
        converted: _types.Reply = to_wit(reply, _types)
        return converted


class Subscriber(_wit_exports.Subscriber):
    """``lutetia:plugin/subscriber``: calls the plugin's ``on_event``."""

    def on_event(self, event: Any) -> None:
        ev = Event(
            event.id,
            event.topic,
            event.publisher,
            event.payload,
            int(event.published_at),
            int(event.attempt),
        )
        _as_result(f"on_event({ev.topic} {ev.id})", lambda: exported().on_event(ev))


class Scheduler(_wit_exports.Scheduler):
    """``lutetia:plugin/scheduler``: calls the plugin's ``on_schedule``."""

    def on_schedule(self, job: Any) -> None:
        j = Job(job.name, int(job.scheduled_at))
        _as_result(f"on_schedule({j.name})", lambda: exported().on_schedule(j))


class Lifecycle(_wit_exports.Lifecycle):
    """``lutetia:plugin/lifecycle``: calls the plugin's ``migrate``."""

    def migrate(self, from_version: Optional[str]) -> None:
        _as_result("migrate", lambda: exported().migrate(from_version))
