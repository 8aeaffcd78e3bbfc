"""A small ``multipart/form-data`` parser (RFC 7578) for HTML forms with file uploads
(``<form method="post" enctype="multipart/form-data">``); the host hands the body over
byte for byte. Use :meth:`lutetia.Request.multipart`::

    for part in request.multipart():
        if part.is_file:
            files.put(safe_name(part.filename), part.content_type or "", part.data)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from . import url
from .errors import Invalid
from .limits import MAX_MULTIPART_PARTS

__all__ = ["Part", "boundary", "parse"]


@dataclass(frozen=True)
class Part:
    """One part of a form: a field, or a file when it has a `filename`."""

    #: The form control's name.
    name: str
    #: The file's name as the browser sent it (last path component), for file parts.
    filename: Optional[str]
    #: The part's declared ``Content-Type``, if any.
    content_type: Optional[str]
    #: The content, exactly as sent.
    data: bytes

    @property
    def is_file(self) -> bool:
        """Whether this part is a file input with a file chosen."""
        return bool(self.filename)

    def text(self) -> Optional[str]:
        """The content as UTF-8 text, or ``None`` if it is not UTF-8."""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return None


def _params(s: str) -> List[Tuple[str, str]]:
    """``key=value; key="quoted \\"value\\""`` parameters, in order."""
    out: List[Tuple[str, str]] = []
    i, n = 0, len(s)
    while True:
        while i < n and (s[i] == ";" or s[i].isspace()):
            i += 1
        eq = s.find("=", i)
        if eq < 0:
            return out
        key = s[i:eq].strip()
        if not key:
            return out
        i = eq + 1
        if i < n and s[i] == '"':
            i += 1
            value = []
            while i < n:
                c = s[i]
                i += 1
                if c == "\\" and i < n and s[i] in '\\"':
                    # Only \" and \\ are escapes: browsers send Windows paths unescaped.
                    value.append(s[i])
                    i += 1
                elif c == '"':
                    break
                else:
                    value.append(c)
            while i < n and s[i] != ";":
                i += 1
            out.append((key, "".join(value)))
        else:
            end = s.find(";", i)
            end = n if end < 0 else end
            out.append((key, s[i:end].strip()))
            i = end


def boundary(content_type: str) -> Optional[str]:
    """The ``boundary`` parameter of a ``multipart/form-data`` content type, or ``None``."""
    essence, _, rest = content_type.partition(";")
    if essence.strip().lower() != "multipart/form-data":
        return None
    for k, v in _params(rest):
        if k.lower() == "boundary" and 0 < len(v) <= 70:
            return v
    return None


def _ext_value(v: str) -> Optional[str]:
    pieces = v.split("'", 2)
    if len(pieces) != 3 or pieces[0].lower() != "utf-8":
        return None
    return url.decode(pieces[2])


def _part(headers: str, data: bytes) -> Part:
    name = filename = filename_star = content_type = None
    for line in headers.split("\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise Invalid(f"multipart body: malformed part header {line!r}")
        key = key.strip().lower()
        if key == "content-disposition":
            kind, _, rest = value.partition(";")
            if kind.strip().lower() != "form-data":
                raise Invalid(
                    f"multipart body: part disposition is {kind.strip()!r}, not form-data"
                )
            for k, v in _params(rest):
                k = k.lower()
                if k == "name":
                    name = v
                elif k == "filename":
                    filename = v
                elif k == "filename*":
                    filename_star = _ext_value(v)
        elif key == "content-type":
            content_type = value.strip()
    if name is None:
        raise Invalid("multipart body: a part has no name")
    chosen = filename_star if filename_star is not None else filename
    if chosen is not None:  # keep the last component: old browsers sent C:\\...\\photo.jpg
        chosen = chosen.replace("\\", "/").rsplit("/", 1)[-1]
    return Part(name, chosen, content_type, data)


def parse(content_type: str, body: bytes) -> List[Part]:
    """Parses a ``multipart/form-data`` body; :class:`~lutetia.Invalid` says what is wrong,
    including a body of more than :data:`~lutetia.limits.MAX_MULTIPART_PARTS` parts."""
    b = boundary(content_type)
    if b is None:
        raise Invalid("multipart body: the content type is not multipart/form-data with a boundary")
    delimiter = b"--" + b.encode("utf-8")
    next_delimiter = b"\r\n" + delimiter
    if body.startswith(delimiter):
        pos = len(delimiter)
    else:
        found = body.find(next_delimiter)
        if found < 0:
            raise Invalid("multipart body: no boundary found")
        pos = found + len(next_delimiter)
    parts: List[Part] = []
    while True:
        if body.startswith(b"--", pos):
            return parts
        while pos < len(body) and body[pos] in b" \t":
            pos += 1
        if not body.startswith(b"\r\n", pos):
            raise Invalid("multipart body: a boundary line is not followed by a line break")
        pos += 2
        if body.startswith(b"\r\n", pos):  # a part without headers
            headers_end = pos - 2
        else:
            headers_end = body.find(b"\r\n\r\n", pos)
            if headers_end < 0:
                raise Invalid("multipart body: a part's headers do not end")
        try:
            headers = body[pos:headers_end].decode("utf-8") if headers_end > pos else ""
        except UnicodeDecodeError:
            raise Invalid("multipart body: a part's headers are not UTF-8") from None
        data_start = headers_end + 4
        data_end = body.find(next_delimiter, data_start)
        if data_end < 0:
            raise Invalid("multipart body: a part does not end with the boundary (truncated body?)")
        if len(parts) == MAX_MULTIPART_PARTS:
            raise Invalid(
                f"multipart body: more than {MAX_MULTIPART_PARTS} parts (the SDK's limit)"
            )
        parts.append(_part(headers, body[data_start:data_end]))
        pos = data_end + len(next_delimiter)
