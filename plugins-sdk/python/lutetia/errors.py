"""The SDK's errors, mirroring the WIT ``error`` variant of ``lutetia:plugin/types``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Optional, Type

if TYPE_CHECKING:  # pragma: no cover
    from .reply import Response

__all__ = [
    "ServiceError",
    "NotFound",
    "Denied",
    "Conflict",
    "Invalid",
    "QuotaExceeded",
    "Unavailable",
    "NotInHost",
]


class ServiceError(Exception):
    """An error from one of the host's services, or from decoding a request.

    Each subclass is one case of the WIT ``error`` variant: :attr:`code` is the WIT case
    name and :attr:`status` the HTTP status that describes it; :meth:`response` turns the
    error into the JSON answer ``{"error": code, "message": text}``::

        try:
            value = kv.get("visits")
        except lutetia.ServiceError as e:
            return e.response()

    Catch a subclass (``except lutetia.NotFound``) to handle one case.
    """

    #: The WIT case name: ``not-found``, ``denied``, ``conflict``, ``invalid``,
    #: ``quota-exceeded`` or ``unavailable``.
    code: str = "unavailable"
    #: The HTTP status of the case: 404, 403, 409, 400, 429 or 503.
    status: int = 503
    #: The text used when none is given.
    default_message: str = "service error"

    def __init__(self, message: Optional[str] = None) -> None:
        self.message: str = message if message else self.default_message
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ServiceError)
            and type(self) is type(other)
            and self.message == other.message
        )

    def __hash__(self) -> int:
        return hash((type(self), self.message))

    def to_json(self) -> Dict[str, str]:
        """The error as the JSON object of the SDKs' error answer."""
        return {"error": self.code, "message": self.message}

    def response(self) -> "Response":
        """The JSON error answer: status :attr:`status`, body
        ``{"error": code, "message": message}``, ``content-type: application/json``."""
        from .reply import Response

        body = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
        return Response(self.status, body, [("content-type", "application/json")])

    @staticmethod
    def from_wit(value: Any) -> "ServiceError":
        """Converts a generated ``types.Error_*`` value into the matching subclass."""
        cls = _BY_WIT_NAME.get(type(value).__name__)
        if cls is None:
            return Unavailable(f"unexpected error from the host: {value!r}")
        why = getattr(value, "value", None)
        return cls(why if isinstance(why, str) and why else None)


class NotFound(ServiceError):
    """The thing asked for does not exist (404)."""

    code = "not-found"
    status = 404
    default_message = "not found"


class Denied(ServiceError):
    """The plugin was not granted this capability, or the call is not allowed (403)."""

    code = "denied"
    status = 403
    default_message = "the plugin was not granted this capability, or the call is not allowed"


class Conflict(ServiceError):
    """A concurrent change won: stale version, unique index, failed precondition (409)."""

    code = "conflict"
    status = 409
    default_message = "a concurrent change won, or a precondition failed"


class Invalid(ServiceError):
    """The arguments, or the request being decoded, are invalid; the message says why (400)."""

    code = "invalid"
    status = 400
    default_message = "invalid arguments"


class QuotaExceeded(ServiceError):
    """The plugin's quota for this service is used up (429)."""

    code = "quota-exceeded"
    status = 429
    default_message = "the plugin's quota for this service is used up"


class Unavailable(ServiceError):
    """The service is temporarily unavailable; the message says why (503)."""

    code = "unavailable"
    status = 503
    default_message = "service unavailable"


_BY_WIT_NAME: Dict[str, Type[ServiceError]] = {
    "Error_NotFound": NotFound,
    "Error_Denied": Denied,
    "Error_Conflict": Conflict,
    "Error_Invalid": Invalid,
    "Error_QuotaExceeded": QuotaExceeded,
    "Error_Unavailable": Unavailable,
}

#: The subclasses by WIT case name (``"not-found"`` → :class:`NotFound`).
BY_CODE: Dict[str, Type[ServiceError]] = {cls.code: cls for cls in _BY_WIT_NAME.values()}


class NotInHost(RuntimeError):
    """A host service was called outside a plugin component (plain ``python3``, a unit
    test): only the pure helpers (requests, replies, HTML and URL helpers) work there."""
