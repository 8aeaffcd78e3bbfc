//! The plugin's private document store (capability `store`): JSON documents in named
//! collections, with versions, queries, indexes and transactions.
//!
//! Documents are your own types, (de)serialized with serde. Every document has an id
//! (unique in its collection) and a version that starts at 1 and grows by one on each
//! write: [`update`] writes only if nobody changed the document since you read it
//! ([`Error::Conflict`] otherwise). Collections are 1-64 characters `[a-z0-9_-]`; fields
//! are top-level keys or dotted paths (`address.city`).
//!
//! The host answers [`Error::Denied`] if the manifest has no `[capabilities.store]`,
//! [`Error::QuotaExceeded`] past the plugin's quota, [`Error::Invalid`] for bad names,
//! bodies over 1 MiB or queries over the caps (limit 1-1000, 16 filters, 100 writes per
//! transaction). These functions call the host: outside it (in a native test) they panic.
//!
//! ```no_run
//! use lutetia_sdk::serde::{Deserialize, Serialize};
//! use lutetia_sdk::store::{self, Op};
//! # #[derive(Serialize, Deserialize)]
//! # #[serde(crate = "lutetia_sdk::serde")]
//! # struct Report { status: String, created: i64 }
//!
//! store::ensure_index("reports", &["status", "created"], false)?;
//! store::insert("reports", "r-1", &Report { status: "open".into(), created: 1 })?;
//!
//! let page = store::query("reports")
//!     .filter("status", Op::Eq, "open")
//!     .order_by_desc("created")
//!     .limit(20)
//!     .fetch::<Report>()?;
//! for doc in &page.documents {
//!     let _ = (&doc.id, doc.version, &doc.data.status);
//! }
//! # Ok::<(), lutetia_sdk::Error>(())
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::lutetia::plugin::store as wit;
use crate::Error;

/// A stored document: its place, its version and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc<T> {
    /// Its collection.
    pub collection: String,
    /// Its id.
    pub id: String,
    /// Its version: 1 after the first write, plus one on each write.
    pub version: u64,
    /// The document itself.
    pub data: T,
}

impl<T: DeserializeOwned> Doc<T> {
    fn from_wit(d: wit::Document) -> Result<Doc<T>, Error> {
        let data = serde_json::from_str(&d.body).map_err(|e| {
            Error::Invalid(format!(
                "document {:?} of {:?} is not the expected type: {e}",
                d.id, d.collection
            ))
        })?;
        Ok(Doc {
            collection: d.collection,
            id: d.id,
            version: d.version,
            data,
        })
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Invalid(format!("cannot serialize the document: {e}")))
}

/// Reads a document, or `None` if there is none.
///
/// ```no_run
/// use lutetia_sdk::serde_json::Value;
/// let doc = lutetia_sdk::store::get::<Value>("reports", "r-1")?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn get<T: DeserializeOwned>(collection: &str, id: &str) -> Result<Option<Doc<T>>, Error> {
    wit::get(collection, id)?.map(Doc::from_wit).transpose()
}

/// Creates or replaces a document, whatever its current state; returns its new version.
///
/// ```no_run
/// let version = lutetia_sdk::store::put("settings", "main", &lutetia_sdk::serde_json::json!({ "open": true }))?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn put<T: Serialize + ?Sized>(collection: &str, id: &str, data: &T) -> Result<u64, Error> {
    Ok(wit::put(collection, id, &to_json(data)?, None)?)
}

/// Creates a document that must not exist yet ([`Error::Conflict`] if it does); returns 1.
///
/// ```no_run
/// lutetia_sdk::store::insert("users", "jdupont", &lutetia_sdk::serde_json::json!({ "name": "Jeanne" }))?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn insert<T: Serialize + ?Sized>(collection: &str, id: &str, data: &T) -> Result<u64, Error> {
    Ok(wit::put(collection, id, &to_json(data)?, Some(0))?)
}

/// Writes `doc.data` back only if the document is still at `doc.version`
/// ([`Error::Conflict`] otherwise: read it again and retry); returns the new version.
///
/// ```no_run
/// use lutetia_sdk::serde_json::{Value, json};
/// use lutetia_sdk::store;
///
/// if let Some(mut doc) = store::get::<Value>("reports", "r-1")? {
///     doc.data["status"] = json!("closed");
///     store::update(&doc)?;
/// }
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn update<T: Serialize>(doc: &Doc<T>) -> Result<u64, Error> {
    Ok(wit::put(
        &doc.collection,
        &doc.id,
        &to_json(&doc.data)?,
        Some(doc.version),
    )?)
}

/// Deletes a document; returns whether it existed.
///
/// ```no_run
/// let existed = lutetia_sdk::store::delete("drafts", "d-7")?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn delete(collection: &str, id: &str) -> Result<bool, Error> {
    Ok(wit::delete(collection, id, None)?)
}

/// Declares an index on fields of a collection (idempotent; cheap to call on every
/// request). Queries filtering or ordering on them use a database index; a `unique` index
/// makes a write duplicating a value an [`Error::Conflict`].
///
/// ```no_run
/// lutetia_sdk::store::ensure_index("users", &["email"], true)?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn ensure_index(collection: &str, fields: &[&str], unique: bool) -> Result<(), Error> {
    let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    Ok(wit::ensure_index(collection, &fields, unique)?)
}

/// How a filter compares a field with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Equal (JSON equality: `1` and `"1"` differ).
    Eq,
    /// Not equal; documents without the field match.
    Ne,
    /// Less than (numbers with numbers, strings with strings).
    Lt,
    /// Less than or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Equal to one of the values of an array (`[1, 2]`, `vec!["a", "b"]`).
    In,
    /// A string field starting with the given string.
    Prefix,
}

impl Op {
    /// The operator named as in the WIT `comparison` enum (`eq`, `ne`, `lt`, `lte`, `gt`,
    /// `gte`, `in`, `prefix`), for plugins that take filters from a request.
    ///
    /// ```
    /// use lutetia_sdk::store::Op;
    ///
    /// assert_eq!(Op::from_name("gte"), Some(Op::Gte));
    /// assert_eq!(Op::from_name("like"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Op> {
        Some(match name {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "in" => Op::In,
            "prefix" => Op::Prefix,
            _ => return None,
        })
    }
}

impl From<Op> for wit::Comparison {
    fn from(op: Op) -> wit::Comparison {
        match op {
            Op::Eq => wit::Comparison::Eq,
            Op::Ne => wit::Comparison::Ne,
            Op::Lt => wit::Comparison::Lt,
            Op::Lte => wit::Comparison::Lte,
            Op::Gt => wit::Comparison::Gt,
            Op::Gte => wit::Comparison::Gte,
            Op::In => wit::Comparison::In,
            Op::Prefix => wit::Comparison::Prefix,
        }
    }
}

/// One page of a query's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The documents, in order.
    pub documents: Vec<Doc<T>>,
    /// Present when more documents may follow: pass it to [`Query::after`].
    pub next_cursor: Option<String>,
}

/// A query on one collection, built with [`query`].
#[derive(Debug, Clone)]
#[must_use = "a query does nothing until fetched or counted"]
pub struct Query {
    collection: String,
    filters: Vec<wit::Filter>,
    order_by: Option<String>,
    descending: bool,
    limit: u32,
    cursor: Option<String>,
    /// The first value that could not be serialized.
    error: Option<Error>,
}

/// Starts a query on `collection`: all its documents by id, 100 per page, until narrowed.
///
/// ```no_run
/// use lutetia_sdk::serde_json::Value;
/// use lutetia_sdk::store::{self, Op};
///
/// let open = store::query("reports").filter("status", Op::In, ["open", "new"]).count()?;
/// let mut cursor = None;
/// loop {
///     let page = store::query("reports").limit(50).after(cursor).fetch::<Value>()?;
///     // ... use page.documents ...
///     match page.next_cursor {
///         Some(next) => cursor = Some(next),
///         None => break,
///     }
/// }
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn query(collection: &str) -> Query {
    Query {
        collection: collection.to_owned(),
        filters: Vec::new(),
        order_by: None,
        descending: false,
        limit: 100,
        cursor: None,
        error: None,
    }
}

impl Query {
    /// Keeps the documents whose `field` compares with `value` (any serializable value).
    pub fn filter<V: Serialize>(mut self, field: &str, op: Op, value: V) -> Query {
        match serde_json::to_string(&value) {
            Ok(value) => self.filters.push(wit::Filter {
                field: field.to_owned(),
                op: op.into(),
                value,
            }),
            Err(e) => {
                self.error.get_or_insert(Error::Invalid(format!(
                    "cannot serialize the value of the filter on {field:?}: {e}"
                )));
            }
        }
        self
    }

    /// Orders by `field`, smallest first (ties by id; documents without it come last).
    pub fn order_by(mut self, field: &str) -> Query {
        self.order_by = Some(field.to_owned());
        self.descending = false;
        self
    }

    /// Orders by `field`, largest first (ties by id, descending; documents without it
    /// come first).
    pub fn order_by_desc(mut self, field: &str) -> Query {
        self.order_by = Some(field.to_owned());
        self.descending = true;
        self
    }

    /// At most `n` documents per page (1 to 1000).
    pub fn limit(mut self, n: u32) -> Query {
        self.limit = n;
        self
    }

    /// Continues after the page whose `next_cursor` this is (`None`: the first page).
    pub fn after(mut self, cursor: impl Into<Option<String>>) -> Query {
        self.cursor = cursor.into();
        self
    }

    /// Runs the query: one page of documents deserialized as `T`.
    pub fn fetch<T: DeserializeOwned>(self) -> Result<Page<T>, Error> {
        let q = self.into_wit()?;
        let page = wit::find(&q)?;
        Ok(Page {
            documents: page
                .documents
                .into_iter()
                .map(Doc::from_wit)
                .collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
        })
    }

    /// Counts the matching documents (order, limit and cursor are ignored).
    pub fn count(self) -> Result<u64, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(wit::count(&self.collection, &self.filters)?)
    }

    fn into_wit(self) -> Result<wit::Query, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(wit::Query {
            collection: self.collection,
            filters: self.filters,
            order_by: self.order_by,
            descending: self.descending,
            limit: self.limit,
            cursor: self.cursor,
        })
    }
}

/// An atomic group of writes with preconditions, built with [`transaction`].
#[derive(Debug, Clone, Default)]
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction {
    preconditions: Vec<wit::Precondition>,
    writes: Vec<wit::Write>,
    error: Option<Error>,
}

/// Starts a transaction: preconditions, then writes, then [`Transaction::commit`]. Either
/// every precondition holds and every write is applied, or nothing is written and the
/// commit answers [`Error::Conflict`].
///
/// ```no_run
/// use lutetia_sdk::serde_json::json;
/// use lutetia_sdk::store::{self, Op};
///
/// // Book one of the 20 seats of a session, once per citizen.
/// store::transaction()
///     .require_absent("bookings", "session-1/jdupont")
///     .require_count_below(store::query("bookings").filter("session", Op::Eq, "session-1"), 20)
///     .put("bookings", "session-1/jdupont", &json!({ "session": "session-1" }))
///     .commit()?;
/// # Ok::<(), lutetia_sdk::Error>(())
/// ```
pub fn transaction() -> Transaction {
    Transaction::default()
}

fn doc_ref(collection: &str, id: &str) -> wit::DocRef {
    wit::DocRef {
        collection: collection.to_owned(),
        id: id.to_owned(),
    }
}

impl Transaction {
    /// Requires that the document does not exist.
    pub fn require_absent(mut self, collection: &str, id: &str) -> Transaction {
        self.preconditions
            .push(wit::Precondition::Absent(doc_ref(collection, id)));
        self
    }

    /// Requires that the document exists at exactly `version`.
    pub fn require_version(mut self, collection: &str, id: &str, version: u64) -> Transaction {
        self.preconditions
            .push(wit::Precondition::AtVersion((doc_ref(collection, id), version)));
        self
    }

    /// Requires that fewer than `below` documents match `query`'s collection and filters.
    pub fn require_count_below(mut self, query: Query, below: u64) -> Transaction {
        if let Some(e) = query.error {
            self.error.get_or_insert(e);
        } else {
            self.preconditions.push(wit::Precondition::CountBelow((
                query.collection,
                query.filters,
                below,
            )));
        }
        self
    }

    fn write<T: Serialize + ?Sized>(
        mut self,
        collection: &str,
        id: &str,
        data: &T,
        expected: Option<u64>,
    ) -> Transaction {
        match to_json(data) {
            Ok(body) => self.writes.push(wit::Write::Put(wit::PutOp {
                collection: collection.to_owned(),
                id: id.to_owned(),
                body,
                expected_version: expected,
            })),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Creates or replaces a document.
    pub fn put<T: Serialize + ?Sized>(self, collection: &str, id: &str, data: &T) -> Transaction {
        self.write(collection, id, data, None)
    }

    /// Creates a document that must not exist yet.
    pub fn insert<T: Serialize + ?Sized>(self, collection: &str, id: &str, data: &T) -> Transaction {
        self.write(collection, id, data, Some(0))
    }

    /// Writes a document back only if it is still at the version read.
    pub fn update<T: Serialize>(self, doc: &Doc<T>) -> Transaction {
        self.write(&doc.collection, &doc.id, &doc.data, Some(doc.version))
    }

    /// Deletes a document (nothing happens if it is absent).
    pub fn delete(mut self, collection: &str, id: &str) -> Transaction {
        self.writes.push(wit::Write::Delete(doc_ref(collection, id)));
        self
    }

    /// Checks the preconditions and applies the writes, all or nothing; returns the new
    /// version of each write, in order (0 for deletes).
    pub fn commit(self) -> Result<Vec<u64>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(wit::transaction(&self.preconditions, &self.writes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_builder_makes_the_wit_query() {
        let q = query("reports")
            .filter("status", Op::Eq, "open")
            .filter("n", Op::In, [1, 2])
            .order_by_desc("created")
            .limit(20)
            .after(Some("abc".to_owned()))
            .into_wit()
            .expect("serializable");
        assert_eq!(q.collection, "reports");
        assert_eq!(q.filters.len(), 2);
        assert_eq!(q.filters[0].value, "\"open\"");
        assert_eq!(q.filters[1].value, "[1,2]");
        assert!(matches!(q.filters[1].op, wit::Comparison::In));
        assert_eq!(q.order_by.as_deref(), Some("created"));
        assert!(q.descending);
        assert_eq!(q.limit, 20);
        assert_eq!(q.cursor.as_deref(), Some("abc"));
        let q = query("x")
            .order_by_desc("a")
            .order_by("b")
            .after(None)
            .into_wit()
            .expect("ok");
        assert!(!q.descending);
        assert_eq!(q.cursor, None);
        assert_eq!(q.limit, 100);
    }

    #[test]
    fn unserializable_values_are_reported_not_sent() {
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3); // maps with non-string keys do not serialize to JSON
        let err = query("x").filter("f", Op::Eq, &bad).into_wit();
        assert!(matches!(err, Err(Error::Invalid(m)) if m.contains("\"f\"")));
        let t = transaction().put("c", "id", &bad);
        assert!(t.error.is_some());
        assert!(t.writes.is_empty());
    }

    #[test]
    fn transaction_builder_collects_in_order() {
        let doc = Doc {
            collection: "c".to_owned(),
            id: "a".to_owned(),
            version: 3,
            data: serde_json::json!({ "x": 1 }),
        };
        let t = transaction()
            .require_absent("c", "b")
            .require_version("c", "a", 3)
            .require_count_below(query("c").filter("x", Op::Gt, 0), 5)
            .insert("c", "b", &serde_json::json!({}))
            .update(&doc)
            .delete("c", "z");
        assert_eq!(t.preconditions.len(), 3);
        assert!(
            matches!(&t.preconditions[2], wit::Precondition::CountBelow((c, f, 5)) if c == "c" && f.len() == 1)
        );
        assert!(matches!(&t.writes[0], wit::Write::Put(p) if p.expected_version == Some(0)));
        assert!(
            matches!(&t.writes[1], wit::Write::Put(p) if p.expected_version == Some(3) && p.body == r#"{"x":1}"#)
        );
        assert!(matches!(&t.writes[2], wit::Write::Delete(r) if r.id == "z"));
    }
}
