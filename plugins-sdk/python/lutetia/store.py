"""The plugin's private document store (capability ``[capabilities.store]``): JSON
objects (``dict``) in named collections, with versions, queries, indexes and
transactions.

Every document has an id (unique in its collection) and a version that starts at 1 and
grows by one on each write. Collections are 1-64 characters ``[a-z0-9_-]``; fields are
top-level keys or dotted paths (``address.city``). Filter values are Python values,
compared as JSON (``1`` and ``"1"`` differ)::

    from lutetia import store
    from lutetia.store import field

    store.ensure_index("reports", ["status", "created"])
    store.put("reports", "r-1", {"status": "open", "created": 1})
    page = store.find("reports", where=[field("status").eq("open")],
                      order_by="created", descending=True, limit=20)
    for doc in page.documents:
        print(doc.id, doc.version, doc.body["status"])
    more = store.find("reports", cursor=page.next_cursor) if page.next_cursor else None

The host answers :class:`~lutetia.Denied` without the capability,
:class:`~lutetia.QuotaExceeded` past the quota, :class:`~lutetia.Conflict` for a stale
version, a unique index or a failed precondition, :class:`~lutetia.Invalid` for bad
names, bodies over 1 MiB or queries over the caps (limit 1-1000, 16 filters, 100 writes
per transaction).
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
from dataclasses import field as _dc_field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

from . import _json as _sdk_json
from . import _wit
from .errors import Invalid

__all__ = [
    "Document",
    "QueryPage",
    "Filter",
    "Field",
    "field",
    "OPS",
    "get",
    "put",
    "insert",
    "update",
    "delete",
    "find",
    "find_all",
    "count",
    "ensure_index",
    "transaction",
    "Absent",
    "AtVersion",
    "CountBelow",
    "Put",
    "Delete",
    "Precondition",
    "Write",
]

#: The comparison names, as in the WIT ``comparison`` enum.
OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "prefix")
_ALIASES = {"==": "eq", "!=": "ne", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def _dumps(value: Any, what: str) -> str:
    try:
        return _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise Invalid(f"cannot serialise {what} as JSON: {e}") from None


def _body(body: Mapping[str, Any]) -> str:
    if not isinstance(body, Mapping):
        raise Invalid(f"a document body is a JSON object (a dict), not {type(body).__name__}")
    return _dumps(dict(body), "the document body")


def _u64(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise Invalid(f"{what} must be an integer from 0 to 2**64-1, not {value!r}")
    return value


@dataclass
class Document:
    """A stored document."""

    #: Its collection.
    collection: str
    #: Its id, unique in the collection.
    id: str
    #: 1 after the first write, plus one on each write.
    version: int
    #: The document itself, a JSON object.
    body: Dict[str, Any]

    @classmethod
    def _from_wit(cls, d: Any) -> "Document":
        # The host only stores JSON objects, checked on the way in.
        body = _sdk_json.loads(
            d.body, f"document {d.id!r} of {d.collection!r}", _sdk_json.STORED_JSON_DEPTH
        )
        return cls(d.collection, d.id, int(d.version), body)


@dataclass
class QueryPage:
    """One page of a query's results."""

    #: The documents, in order.
    documents: List[Document]
    #: Present when more documents may follow: pass it as the next query's `cursor`.
    next_cursor: Optional[str]

    def __iter__(self) -> Iterator[Document]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)


@dataclass(frozen=True)
class Filter:
    """One condition on a field: ``Filter("age", "gt", 3)``. `op` is one of
    :data:`OPS` (or ``== != < <= > >=``); `value` is any JSON-serialisable value (a list
    for ``in``, a string for ``prefix``). :func:`field` builds them more readably."""

    field: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        op = _ALIASES.get(self.op, self.op)
        if op not in OPS:
            raise Invalid(f"unknown filter comparison {self.op!r}: one of {', '.join(OPS)}")
        object.__setattr__(self, "op", op)

    def _to_wit(self, store: Any) -> Any:
        return store.Filter(
            self.field,
            getattr(store.Comparison, self.op.upper()),
            _dumps(self.value, f"the value of the filter on {self.field!r}"),
        )


class Field:
    """A field to filter on, made by :func:`field`: ``field("age").gt(3)``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def eq(self, value: Any) -> Filter:
        """Equal (JSON equality)."""
        return Filter(self.name, "eq", value)

    def ne(self, value: Any) -> Filter:
        """Not equal; documents without the field match."""
        return Filter(self.name, "ne", value)

    def lt(self, value: Any) -> Filter:
        """Less than (numbers with numbers, strings with strings)."""
        return Filter(self.name, "lt", value)

    def lte(self, value: Any) -> Filter:
        """Less than or equal."""
        return Filter(self.name, "lte", value)

    def gt(self, value: Any) -> Filter:
        """Greater than."""
        return Filter(self.name, "gt", value)

    def gte(self, value: Any) -> Filter:
        """Greater than or equal."""
        return Filter(self.name, "gte", value)

    def in_(self, values: Iterable[Any]) -> Filter:
        """Equal to one of `values` (at most 100)."""
        return Filter(self.name, "in", list(values))

    one_of = in_

    def prefix(self, prefix: str) -> Filter:
        """A string field starting with `prefix`."""
        return Filter(self.name, "prefix", prefix)


def field(name: str) -> Field:
    """The field `name` (top-level key or dotted path), to build a :class:`Filter`:
    ``field("status").eq("open")``, ``field("n").in_([1, 2])``."""
    return Field(name)


def _filters(where: Union[Filter, Iterable[Filter], None], store: Any) -> List[Any]:
    if where is None:
        return []
    if isinstance(where, Filter):
        where = [where]
    out = []
    for f in where:
        if not isinstance(f, Filter):
            if isinstance(f, (tuple, list)) and len(f) == 3:
                f = Filter(*f)
            else:
                raise Invalid(
                    f"a filter is a lutetia.store.Filter or (field, op, value), not {f!r}"
                )
        out.append(f._to_wit(store))
    return out


def _store() -> Any:
    return _wit.interface("store")


def get(collection: str, id: str) -> Optional[Document]:
    """The document `id` of `collection`, or ``None``."""
    d = _wit.call("store", "get", collection, id)
    return None if d is None else Document._from_wit(d)


def put(
    collection: str, id: str, body: Mapping[str, Any], expected_version: Optional[int] = None
) -> int:
    """Creates or replaces a document and returns its new version. `expected_version`:
    ``None`` writes whatever the current state, ``0`` requires that the document does not
    exist, ``n`` that it is at version n (:class:`~lutetia.Conflict` otherwise)."""
    ev = None if expected_version is None else _u64(expected_version, "expected_version")
    return int(_wit.call("store", "put", collection, id, _body(body), ev))


def insert(collection: str, id: str, body: Mapping[str, Any]) -> int:
    """Creates a document that must not exist yet (:class:`~lutetia.Conflict` if it
    does); returns 1."""
    return put(collection, id, body, expected_version=0)


def update(doc: Document) -> int:
    """Writes ``doc.body`` back only if the document is still at ``doc.version``
    (:class:`~lutetia.Conflict` otherwise: read it again and retry); returns the new
    version and updates ``doc.version``."""
    version = put(doc.collection, doc.id, doc.body, expected_version=doc.version)
    doc.version = version
    return version


def delete(collection: str, id: str, expected_version: Optional[int] = None) -> bool:
    """Deletes a document; returns whether it existed. With `expected_version`, a
    document at another version is a :class:`~lutetia.Conflict`."""
    ev = None if expected_version is None else _u64(expected_version, "expected_version")
    return bool(_wit.call("store", "delete", collection, id, ev))


def find(
    collection: str,
    where: Union[Filter, Iterable[Filter], None] = (),
    order_by: Optional[str] = None,
    descending: bool = False,
    limit: int = 100,
    cursor: Optional[str] = None,
) -> QueryPage:
    """One page of the documents of `collection` matching every filter of `where`,
    ordered by `order_by` (ties by id; ``None`` orders by id), largest first if
    `descending`, at most `limit` (1-1000), after the page whose ``next_cursor`` is
    `cursor`. Documents without the order field come last ascending, first descending."""
    s = _store()
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < 2**32:
        raise Invalid(f"limit must be an integer from 1 to 1000, not {limit!r}")
    q = s.Query(
        collection=collection,
        filters=_filters(where, s),
        order_by=order_by,
        descending=bool(descending),
        limit=limit,
        cursor=cursor or None,
    )
    page = _wit.call("store", "find", q)
    return QueryPage([Document._from_wit(d) for d in page.documents], page.next_cursor)


def find_all(
    collection: str,
    where: Union[Filter, Iterable[Filter], None] = (),
    order_by: Optional[str] = None,
    descending: bool = False,
    page_size: int = 100,
) -> Iterator[Document]:
    """Every matching document, fetching pages of `page_size` as it iterates (a
    generator of :class:`Document`)."""
    where = list([where] if isinstance(where, Filter) else (where or ()))
    cursor: Optional[str] = None
    while True:
        page = find(collection, where, order_by, descending, page_size, cursor)
        yield from page.documents
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def count(collection: str, where: Union[Filter, Iterable[Filter], None] = ()) -> int:
    """How many documents of `collection` match every filter of `where`."""
    s = _store()
    return int(_wit.call("store", "count", collection, _filters(where, s)))


def ensure_index(collection: str, fields: Union[str, Sequence[str]], unique: bool = False) -> None:
    """Declares an index on one or more fields (idempotent: cheap to call on every
    request). A `unique` index makes a write duplicating a value a
    :class:`~lutetia.Conflict`."""
    if isinstance(fields, str):
        fields = [fields]
    _wit.call("store", "ensure_index", collection, list(fields), bool(unique))


# -- transactions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Absent:
    """Precondition: the document does not exist."""

    collection: str
    id: str

    def _to_wit(self, s: Any) -> Any:
        return s.Precondition_Absent(s.DocRef(self.collection, self.id))


@dataclass(frozen=True)
class AtVersion:
    """Precondition: the document exists at exactly `version`."""

    collection: str
    id: str
    version: int

    def _to_wit(self, s: Any) -> Any:
        return s.Precondition_AtVersion(
            (s.DocRef(self.collection, self.id), _u64(self.version, "version"))
        )


@dataclass(frozen=True)
class CountBelow:
    """Precondition: fewer than `below` documents of `collection` match `where`."""

    collection: str
    where: Sequence[Filter]
    below: int

    def _to_wit(self, s: Any) -> Any:
        return s.Precondition_CountBelow(
            (self.collection, _filters(self.where, s), _u64(self.below, "below"))
        )


@dataclass(frozen=True)
class Put:
    """Write: create or replace a document (`expected_version` as in :func:`put`)."""

    collection: str
    id: str
    body: Mapping[str, Any] = _dc_field(default_factory=dict)
    expected_version: Optional[int] = None

    def _to_wit(self, s: Any) -> Any:
        ev = (
            None
            if self.expected_version is None
            else _u64(self.expected_version, "expected_version")
        )
        return s.Write_Put(s.PutOp(self.collection, self.id, _body(self.body), ev))


@dataclass(frozen=True)
class Delete:
    """Write: delete a document (nothing happens if it is absent)."""

    collection: str
    id: str

    def _to_wit(self, s: Any) -> Any:
        return s.Write_Delete(s.DocRef(self.collection, self.id))


Precondition = Union[Absent, AtVersion, CountBelow]
Write = Union[Put, Delete]


def transaction(preconditions: Iterable[Precondition], writes: Iterable[Write]) -> List[int]:
    """Checks every precondition, then applies every write, all or nothing; returns the
    new version of each write, in order (0 for deletes). A failed precondition or version
    check is a :class:`~lutetia.Conflict` and nothing is written::

        store.transaction(
            [store.Absent("bookings", "s1/jdupont"),
             store.CountBelow("bookings", [field("session").eq("s1")], 20)],
            [store.Put("bookings", "s1/jdupont", {"session": "s1"})],
        )
    """
    s = _store()
    pre = []
    for p in preconditions:
        if not isinstance(p, (Absent, AtVersion, CountBelow)):
            raise Invalid(
                f"a precondition is store.Absent, store.AtVersion or store.CountBelow, not {p!r}"
            )
        pre.append(p._to_wit(s))
    ws = []
    for w in writes:
        if not isinstance(w, (Put, Delete)):
            raise Invalid(f"a write is store.Put or store.Delete, not {w!r}")
        ws.append(w._to_wit(s))
    return [int(v) for v in _wit.call("store", "transaction", pre, ws)]
