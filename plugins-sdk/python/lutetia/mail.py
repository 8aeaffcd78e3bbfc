"""Outgoing mail (capability ``[capabilities.mail]``): a plugin queues a message in the
host's outbox and the host sends it over SMTP, with retries::

    mail.send("Jeanne Dupont <jeanne@example.org>", "Your appointment",
              "See you on Monday.", html="<p>See you on <b>Monday</b>.</p>",
              attachments=[mail.Attachment("rdv.ics", "text/calendar; method=REQUEST", ics)])

Invalid addresses, an empty subject or a message over 10 MiB are
:class:`~lutetia.Invalid`; more messages than the manifest's ``max-per-hour`` are
:class:`~lutetia.QuotaExceeded`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Union

from . import _wit

__all__ = ["Attachment", "send"]


@dataclass(frozen=True)
class Attachment:
    """A file attached to a message (``str`` data is sent as UTF-8)."""

    #: File name shown to the recipient.
    filename: str
    #: Media type (``text/calendar; method=REQUEST``).
    content_type: str
    #: Content.
    data: Union[bytes, str]


def _list(addresses: Union[str, Iterable[str]]) -> "list[str]":
    if isinstance(addresses, str):
        return [addresses]
    return [str(a) for a in addresses]


def send(
    to: Union[str, Iterable[str]],
    subject: str,
    text: str,
    html: Optional[str] = None,
    cc: Union[str, Iterable[str]] = (),
    reply_to: Optional[str] = None,
    attachments: Iterable[Attachment] = (),
) -> str:
    """Queues a message in the outbox and returns its id. `to` and `cc` are one address
    or several (``name@example.org`` or ``Name <name@example.org>``)."""
    m = _wit.interface("mail")
    atts = [
        m.Attachment(
            filename=a.filename,
            content_type=a.content_type,
            data=a.data.encode("utf-8") if isinstance(a.data, str) else bytes(a.data),
        )
        for a in attachments
    ]
    message = m.Message(
        to=_list(to),
        cc=_list(cc),
        reply_to=reply_to,
        subject=subject,
        text=text,
        html=html,
        attachments=atts,
    )
    return str(_wit.call("mail", "send", message))
