"""The :class:`Plugin` base class and :func:`export`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Type, Union

if TYPE_CHECKING:  # pragma: no cover
    from .events import Event, Job
    from .reply import Reply
    from .request import Request

__all__ = ["Plugin", "export", "exported"]


class Plugin:
    """A Lutetia plugin: subclass it, implement :meth:`handle`, and call
    :func:`lutetia.export` with the class at the end of ``app.py``::

        class News(lutetia.Plugin):
            def handle(self, request: Request) -> lutetia.Reply:
                return Page("News", "<p>Bonjour</p>")

        lutetia.export(News)

    A fresh component instance serves each call: keep state in the host's services
    (:mod:`lutetia.kv`, :mod:`lutetia.store`...), not in attributes or globals.
    """

    def handle(self, request: "Request") -> "Reply":
        """Handles one HTTP request and returns a :class:`~lutetia.Page` or a
        :class:`~lutetia.Response`.

        An exception raised here is not caught: it traps the instance, the host answers a
        clean 500 error page and logs the traceback (like a panic in Rust). Catch the
        :class:`~lutetia.ServiceError` you expect and answer ``e.response()``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement handle(request)")

    def on_event(self, event: "Event") -> None:
        """Receives an event published on a topic the manifest subscribes to
        (``[capabilities.events] subscribe``). Raising an exception makes the host deliver
        it again later, with backoff; later events of the topic wait. The default ignores
        events."""

    def on_schedule(self, job: "Job") -> None:
        """Runs one of the jobs of the manifest's ``[capabilities] jobs``. An exception is
        recorded by the host as the run's error. The default does nothing."""

    def migrate(self, from_version: Optional[str]) -> None:
        """Brings stored data up to date when this version is installed (`from_version`
        ``None``), upgraded to or rolled back to (the version that served until now). It
        runs before the version serves any request; an exception cancels the operation
        and the previous version keeps serving. The default does nothing."""


_registered: Optional[Union[Type[Plugin], Plugin]] = None
_instance: Optional[Plugin] = None


def export(plugin: Union[Type[Plugin], Plugin]) -> Union[Type[Plugin], Plugin]:
    """Registers the plugin: a :class:`Plugin` subclass (instantiated without arguments
    on its first call, never at build time) or an instance. Call it once, in ``app.py``.
    Returns its argument, so it also works as a class decorator (``@lutetia.export``)."""
    global _registered, _instance
    if isinstance(plugin, type):
        if not callable(getattr(plugin, "handle", None)):
            raise TypeError("lutetia.export: the plugin class must define handle(self, request)")
        _instance = None
    elif callable(getattr(plugin, "handle", None)):
        _instance = plugin
    else:
        raise TypeError(
            "lutetia.export expects a lutetia.Plugin subclass or instance, "
            f"not {type(plugin).__name__}"
        )
    _registered = plugin
    return plugin


def exported() -> Plugin:
    """The registered plugin's instance (created on first use)."""
    global _instance
    if _instance is None:
        if _registered is None:
            raise RuntimeError(
                "no plugin was exported: call lutetia.export(MyPlugin) at the end of app.py"
            )
        _instance = _registered()  # type: ignore[operator]
    return _instance


def _reset() -> None:
    """Forgets the registered plugin (for unit tests)."""
    global _registered, _instance
    _registered = None
    _instance = None
