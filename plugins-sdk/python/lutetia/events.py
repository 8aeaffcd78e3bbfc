"""Events between plugins (capability ``events``) and scheduled jobs.

A plugin publishes with :func:`publish` on a topic listed in its manifest's
``[capabilities.events] publish``; plugins subscribed to the topic receive an
:class:`Event` in :meth:`lutetia.Plugin.on_event`. Jobs declared in
``[capabilities] jobs`` arrive as a :class:`Job` in :meth:`lutetia.Plugin.on_schedule`::

    events.publish("news.published", {"id": item_id, "title": title})
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
from typing import Any

from . import _json as _sdk_json
from . import _wit
from .errors import Invalid

__all__ = ["Event", "Job", "publish", "publish_raw"]


@dataclass(frozen=True)
class Event:
    """An event delivered to a subscriber."""

    #: Unique id (the same on every delivery attempt: use it to ignore duplicates).
    id: str
    #: The topic it was published on.
    topic: str
    #: Id of the publishing plugin.
    publisher: str
    #: The payload, JSON text.
    payload: str
    #: When it was published, milliseconds since the Unix epoch.
    published_at: int
    #: 1 on the first delivery, more on retries.
    attempt: int

    def json(self) -> Any:
        """The payload parsed as JSON; :class:`~lutetia.Invalid` if it is not JSON or is
        nested deeper than :data:`~lutetia.limits.MAX_JSON_DEPTH` levels (another plugin
        wrote it)."""
        return _sdk_json.loads(self.payload, "event payload")


@dataclass(frozen=True)
class Job:
    """A scheduled job run."""

    #: The job's name, as in the manifest.
    name: str
    #: When this run was due, milliseconds since the Unix epoch.
    scheduled_at: int


def publish(topic: str, payload: Any) -> None:
    """Publishes `payload` (any JSON-serialisable value) on `topic` (``[a-z0-9._-]``,
    1-128 characters, declared in the manifest). :class:`~lutetia.Invalid` if it cannot
    be serialised or is over 64 KiB; :class:`~lutetia.Denied` for an undeclared topic."""
    try:
        text = _json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise Invalid(f"event payload is not JSON-serialisable: {e}") from None
    publish_raw(topic, text)


def publish_raw(topic: str, payload: str) -> None:
    """Publishes `payload`, already JSON text, on `topic` (the host checks it is JSON)."""
    _wit.call("events", "publish", topic, payload)
