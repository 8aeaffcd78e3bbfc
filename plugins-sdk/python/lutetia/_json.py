"""The SDK's JSON parser: ``json.loads`` behind the checks that make a Python plugin read
JSON as the Rust and JavaScript SDKs do, and never trap on it.

- Nesting deeper than :data:`~lutetia.limits.MAX_JSON_DEPTH` (request bodies, event
  payloads) or :data:`STORED_JSON_DEPTH` (the plugin's own kv values and documents) is
  refused before parsing, by a scan made of whole-string operations that never recurses.
  ``json`` recurses in C once per level, and in a built plugin (CPython in WebAssembly)
  that exhausts the WebAssembly stack at about 1100 levels: a trap, not a
  ``RecursionError``, so no ``except`` could catch it (``contract.rs``,
  ``a_native_parser_on_deep_json``, shows it).
- Only RFC 8259 JSON is accepted: Python's extensions ``NaN``, ``Infinity`` and
  ``-Infinity``, numbers beyond the range of a double, and ``\\u`` escapes that leave a
  lone surrogate (which no UTF-8 answer can carry) are invalid, as they are for serde_json.

Every failure is :class:`~lutetia.Invalid` whose message says what is wrong.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Dict

from .errors import Invalid
from .limits import MAX_JSON_DEPTH

__all__ = ["STORED_JSON_DEPTH", "loads", "too_deep"]

#: The depth limit of data the plugin stored itself: serde_json's (the Rust SDK reads no
#: deeper, and the host's store checks documents with it on the way in).
STORED_JSON_DEPTH = 127

# A JSON string, or the rest of the text after a quote that is never closed: the pattern
# matches wherever a quote starts, so the scan reads each character once (no retry at the
# escaped quotes inside, which would be quadratic).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# Where a number may exceed a double: an exponent, or 309 digits in a row (the look-behind
# tries a run of digits once, at its start).
_MAYBE_HUGE_NUMBER = re.compile(r"[0-9][eE]|(?<![0-9])[0-9]{309}")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def too_deep(text: str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether `text` nests arrays and objects deeper than `max_depth`.

    Brackets inside strings are text. Each pass of ``replace`` removes the innermost
    ``[]`` pairs, one level of every branch: a balanced document of depth d takes d
    passes. What no pass removes (``]]…[[…``, a truncated or malformed text) is added as
    depth, so the answer never under-counts what a parser would recurse into before it
    fails; for valid JSON it is exact.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False
    s = _STRING.sub("", text) if '"' in text else text
    s = _NOT_BRACKET.sub("", s).replace("{", "[").replace("}", "]")
    passes = 0
    while "[]" in s:
        passes += 1
        if passes > max_depth:
            return True
        s = s.replace("[]", "")
    return passes + s.count("[") > max_depth


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {_cut(text)} is out of the range of a double")
    return value


def _finite_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    # JSON has no leading zeros: more than 309 digits is at least 1e309.
    if digits > 309 or (digits == 309 and math.isinf(_as_float(text))):
        raise ValueError(f"the number {_cut(text)} is out of the range of a double")
    return int(text)


def _as_float(text: str) -> float:
    try:
        return float(int(text))
    except OverflowError:
        return math.inf


def _cut(text: str) -> str:
    return text if len(text) <= 24 else text[:20] + "…"


def loads(text: str, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parses `text` as JSON; :class:`~lutetia.Invalid` names `what` and says why not.

    `max_depth` is ``MAX_JSON_DEPTH`` for what comes from outside the plugin and
    ``STORED_JSON_DEPTH`` for what it stored itself.
    """
    if too_deep(text, max_depth):
        raise Invalid(f"{what} is JSON nested deeper than {max_depth} levels (the SDK's limit)")
    hooks: Dict[str, Any] = {}
    if _MAYBE_HUGE_NUMBER.search(text):
        hooks = {"parse_float": _finite_float, "parse_int": _finite_int}
    try:
        value = json.loads(text, parse_constant=_no_constant, **hooks)
        if _SURROGATE_ESCAPE.search(text):
            # Paired escapes became one character; a lone one cannot be encoded.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except RecursionError:  # under a native CPython with a small stack limit
        raise Invalid(f"{what} is JSON nested too deeply for the Python parser") from None
    except UnicodeEncodeError:
        raise Invalid(f"{what} is not valid JSON: a \\u escape is a lone surrogate") from None
    except ValueError as e:
        raise Invalid(f"{what} is not valid JSON: {e}") from None
    return value
