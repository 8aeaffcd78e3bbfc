"""The plugin's settings: the defaults of its manifest's ``[config]`` table, overridden
by the operator. No capability needed::

    from lutetia import config
    page_size = int(config.get_or("page-size", "10"))
"""

from __future__ import annotations

from typing import Dict, Optional, overload

from . import _wit

__all__ = ["get", "get_or", "get_int", "all"]


def get(key: str) -> Optional[str]:
    """The value of the setting `key`, or ``None`` if it is not set."""
    value = _wit.call("config", "get", key)
    return None if value is None else str(value)


@overload
def get_or(key: str, default: str) -> str: ...
@overload
def get_or(key: str, default: None) -> Optional[str]: ...


def get_or(key: str, default: Optional[str]) -> Optional[str]:
    """The value of the setting `key`, or `default` if it is not set."""
    value = get(key)
    return default if value is None else value


def get_int(key: str, default: int) -> int:
    """The setting `key` read as an integer, or `default` if it is not set or not an
    integer."""
    value = get(key)
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def all() -> Dict[str, str]:  # noqa: A001 - mirrors the Rust SDK's config::all
    """Every setting as a ``dict`` key → value, in key order."""
    return dict(_wit.call("config", "get_all"))
