"""The plugin's private binary files (capability ``[capabilities.files]``): photos of a
street issue, attachments.

Names are 1-200 characters of ``[A-Za-z0-9._-]`` not starting with a dot; the media type
must be one the manifest lists and the content must look like it
(:class:`~lutetia.Invalid` otherwise); a file over ``max-size`` or the plugin's
``max-total-bytes`` is :class:`~lutetia.QuotaExceeded`. Browsers get stored files at
:func:`url` (``/p/{plugin}/_files/{name}``)::

    info = files.put("pothole-42.png", "image/png", data)
    img = f'<img src="{html_escape(files.url(request, info.name))}" alt="">'
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Union

from . import _wit
from . import url as _url
from .errors import Invalid
from .request import Request

__all__ = ["FileInfo", "put", "get", "stat", "delete", "list", "url"]


@dataclass(frozen=True)
class FileInfo:
    """What the host knows of a stored file."""

    #: The file's name.
    name: str
    #: Its media type, as checked when stored (``image/png``).
    content_type: str
    #: Size in bytes.
    size: int
    #: Hex SHA-256 of the content.
    sha256: str
    #: When it was stored, milliseconds since the Unix epoch.
    created_at: int

    @classmethod
    def _from_wit(cls, f: Any) -> "FileInfo":
        return cls(f.name, f.content_type, int(f.size), f.sha256, int(f.created_at))


def put(name: str, content_type: str, data: Union[bytes, bytearray, memoryview, str]) -> FileInfo:
    """Stores a file (``str`` data is stored as UTF-8), replacing any of the same name."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return FileInfo._from_wit(_wit.call("files", "put", name, content_type, raw))


def get(name: str) -> Optional[Tuple[FileInfo, bytes]]:
    """The file's description and bytes, or ``None``."""
    found = _wit.call("files", "get", name)
    if found is None:
        return None
    info, data = found
    return FileInfo._from_wit(info), bytes(data)


def stat(name: str) -> Optional[FileInfo]:
    """The file's description only, or ``None``."""
    info = _wit.call("files", "stat", name)
    return None if info is None else FileInfo._from_wit(info)


def delete(name: str) -> bool:
    """Deletes a file; returns whether it existed."""
    return builtins.bool(_wit.call("files", "delete", name))


def list(prefix: str = "", limit: int = 1000) -> List[FileInfo]:  # noqa: A001 - WIT name
    """The files whose name starts with `prefix`, in name order, at most `limit` (1-1000)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < 2**32:
        raise Invalid(f"files.list: limit must be an integer from 1 to 1000, not {limit!r}")
    return [FileInfo._from_wit(f) for f in _wit.call("files", "list", prefix, limit)]


def url(request: Request, name: str) -> str:
    """Where browsers get the file `name`: ``{mount}/_files/{name}``."""
    return request.link("_files/" + _url.encode(name))
