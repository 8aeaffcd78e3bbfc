"""Building HTML safely."""

from __future__ import annotations

__all__ = ["escape"]

_TABLE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})


def escape(text: object) -> str:
    """Escapes text for HTML element content and quoted attribute values: ``&``, ``<``,
    ``>``, ``"`` and ``'`` become character references. Anything else than a ``str`` is
    converted with ``str()`` first.

    Escape every piece of text that does not come from the plugin's own code (request
    data, settings, stored values) before putting it into a :class:`~lutetia.Page`::

        >>> escape("<b>Jeanne & Marie</b>")
        '&lt;b&gt;Jeanne &amp; Marie&lt;/b&gt;'
    """
    if not isinstance(text, str):
        text = str(text)
    return text.translate(_TABLE)
