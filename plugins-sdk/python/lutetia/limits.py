"""The limits of the SDK's request-body parsers, the same in the Python, Rust and
JavaScript SDKs (``docs/plugin-guide.md``, "Request bodies and their limits").

A body over a limit is refused with :class:`~lutetia.Invalid`, whose message names the
limit, before it is decoded: ``json.loads``, which recurses in C once per level, cannot
then exhaust the plugin's WebAssembly stack (a trap no ``except`` catches), and a plugin
answers the same in every language::

    >>> from lutetia import Invalid, Request, limits
    >>> deep = "[" * (limits.MAX_JSON_DEPTH + 1) + "]" * (limits.MAX_JSON_DEPTH + 1)
    >>> try:
    ...     Request("POST", "/", body=deep).json()
    ... except Invalid as e:
    ...     print(e)
    request body is JSON nested deeper than 64 levels (the SDK's limit)
"""

from __future__ import annotations

__all__ = ["MAX_JSON_DEPTH", "MAX_FORM_FIELDS", "MAX_MULTIPART_PARTS"]

#: The deepest nesting of arrays and objects a JSON body or event payload may have: ``[]``
#: is depth 1, ``{"a": [1]}`` depth 2. Python's parser recurses once per level (about 1100
#: levels exhaust a plugin's stack), and so does plugin code that walks the value: 64
#: leaves both far from the interpreter's limits.
MAX_JSON_DEPTH = 64

#: The most fields an ``application/x-www-form-urlencoded`` body may have (empty pairs, as
#: in ``a=1&&b=2``, do not count). The same bound as Django's and PHP's defaults: it keeps
#: a ``dict`` of the fields cheap to build even when an attacker picks colliding names.
MAX_FORM_FIELDS = 1000

#: The most parts a ``multipart/form-data`` body may have.
MAX_MULTIPART_PARTS = 1000
