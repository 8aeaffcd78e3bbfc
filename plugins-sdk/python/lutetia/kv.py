"""The plugin's private key-value store (capability ``kv = true``).

Keys are at most 512 bytes of UTF-8, values at most 1 MiB of bytes (``str`` values are
stored as UTF-8)::

    from lutetia import kv
    visits = kv.increment("visits")
    kv.set_json("settings", {"open": True})
"""

from __future__ import annotations

import builtins
import json as _json
from typing import Any, List, Optional, Union

from . import _json as _sdk_json
from . import _wit
from .errors import Invalid

__all__ = [
    "get",
    "set",
    "delete",
    "increment",
    "compare_and_swap",
    "list_keys",
    "get_str",
    "set_str",
    "get_json",
    "set_json",
]

#: What a value may be given as (``str`` is stored as UTF-8).
Value = Union[bytes, bytearray, memoryview, str]


def _bytes(value: Value) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"a kv value is bytes or str, not {type(value).__name__}")


def get(key: str) -> Optional[bytes]:
    """The value stored at `key`, or ``None``."""
    value = _wit.call("kv", "get", key)
    return None if value is None else bytes(value)


def set(key: str, value: Value) -> None:  # noqa: A001 - mirrors the WIT name
    """Stores `value` at `key`, replacing any previous value."""
    _wit.call("kv", "set", key, _bytes(value))


def delete(key: str) -> bool:
    """Deletes the value at `key`; returns whether there was one."""
    return builtins.bool(_wit.call("kv", "delete", key))


def increment(key: str, delta: int = 1) -> int:
    """Adds `delta` to the integer stored at `key` (a missing key counts as 0) and returns
    the new value, atomically. :class:`~lutetia.Invalid` if the value is not a decimal
    integer or the sum leaves the signed 64-bit range."""
    if not -(2**63) <= delta < 2**63:
        raise Invalid(f"kv.increment: delta {delta} is outside the signed 64-bit range")
    return int(_wit.call("kv", "increment", key, delta))


def compare_and_swap(key: str, expected: Optional[Value], new: Value) -> bool:
    """Sets `key` to `new` only if its current value is `expected` (``None``: the key is
    absent); returns whether the swap happened."""
    exp = None if expected is None else _bytes(expected)
    return builtins.bool(_wit.call("kv", "compare_and_swap", key, exp, _bytes(new)))


def list_keys(prefix: str = "", start_after: Optional[str] = None, limit: int = 1000) -> List[str]:
    """The keys starting with `prefix`, in byte order, after `start_after` if given, at
    most `limit` (1-1000): pass the last key of a page as `start_after` for the next."""
    if not 0 <= limit < 2**32:
        raise Invalid(f"kv.list_keys: limit {limit} is out of range")
    return builtins.list(_wit.call("kv", "list_keys", prefix, start_after, limit))


def get_str(key: str) -> Optional[str]:
    """The value at `key` as UTF-8 text, or ``None``; :class:`~lutetia.Invalid` if it is
    not UTF-8."""
    value = get(key)
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid(f"the value of {key!r} is not UTF-8: {e}") from None


def set_str(key: str, value: str) -> None:
    """Stores text at `key` (as UTF-8)."""
    set(key, value)


def get_json(key: str, default: Any = None) -> Any:
    """The value at `key` parsed as JSON, or `default` if there is none;
    :class:`~lutetia.Invalid` if it is not JSON."""
    text = get_str(key)
    if text is None:
        return default
    return _sdk_json.loads(text, f"the value of {key!r}", _sdk_json.STORED_JSON_DEPTH)


def set_json(key: str, value: Any) -> None:
    """Stores `value` serialised as JSON at `key`; :class:`~lutetia.Invalid` if it is not
    JSON-serialisable."""
    try:
        text = _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise Invalid(f"cannot serialise the value of {key!r} as JSON: {e}") from None
    set(key, text)
