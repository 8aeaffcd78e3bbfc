//! Storage of the `store` interface: JSON documents per (plugin, collection, id).
//!
//! - `documents` holds the bodies (TEXT read with `json_extract` on SQLite, JSONB read with
//!   `->` on PostgreSQL). Field expressions are generated from validated field names only
//!   (`[A-Za-z0-9_]` segments); values are always bound parameters.
//! - Declared indexes are real expression indexes on the same expressions the queries use,
//!   partial on the plugin and the collection (written as literals in both the index and the
//!   queries, so the planner can match the partial predicate; plugin ids and collection
//!   names are validated to `[a-z0-9_-]` before they reach SQL text).
//! - Every write runs in a transaction that first locks the plugin's `store_usage` row
//!   (`BEGIN IMMEDIATE` on SQLite, `SELECT ... FOR UPDATE` on PostgreSQL): the writes of
//!   one plugin are serialised, so preconditions (count-below included) and the quota are
//!   exact on both backends, and the usage row is updated in the same transaction. In a
//!   [`Scope`] (a `migrate` call) the write is a savepoint of the scope's transaction.
//! - Index builds never race (see [`Database::store_ensure_index`]): one at a time per
//!   plugin, `CREATE INDEX CONCURRENTLY` on PostgreSQL outside the plugin's write lock.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, PgPool};

use super::{
    Backend, Database, DbError, LOCK_INDEXES, LOCK_MIGRATING, Scope, ScopedConnection, lock_key, now_ms,
};

/// Largest document body, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most documents one query returns.
pub const MAX_LIMIT: u32 = 1000;
/// Most filters of one query.
pub const MAX_FILTERS: usize = 16;
/// Most writes of one transaction.
pub const MAX_WRITES: usize = 100;
/// Most preconditions of one transaction.
pub const MAX_PRECONDITIONS: usize = 100;
/// Most values of an `in` filter.
pub const MAX_IN_VALUES: usize = 100;
/// Most fields of one index.
pub const MAX_INDEX_FIELDS: usize = 4;
/// Most indexes one plugin may declare.
pub const MAX_INDEXES: i64 = 64;
/// Longest document id, in characters.
pub const MAX_ID_CHARS: usize = 256;
/// Longest field path, in bytes.
pub const MAX_FIELD_BYTES: usize = 128;

/// Why a store operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A version check or precondition failed, or a unique index would be violated.
    #[error("conflict")]
    Conflict,
    /// The write would take the plugin over its quota.
    #[error("quota exceeded")]
    QuotaExceeded,
    /// The arguments are invalid; the message says why.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A write while an upgrade of the plugin runs its `migrate` (PostgreSQL): refused at
    /// once rather than queued on the rows the migration holds.
    #[error("the plugin's data is being migrated")]
    Migrating,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(d) = &e {
            // 40001 serialization failure, 40P01 deadlock: another writer won.
            if d.is_unique_violation() || matches!(d.code().as_deref(), Some("40001" | "40P01")) {
                return StoreError::Conflict;
            }
        }
        StoreError::Db(DbError::Query(e))
    }
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid(message.into())
}

/// The quota of one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Total size of the bodies, bytes.
    pub max_bytes: u64,
    /// Number of documents.
    pub max_documents: u64,
}

/// How a filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal (a missing field is not equal to anything).
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// One of the values of a JSON array.
    In,
    /// A string starting with the value.
    Prefix,
}

/// A filter as the plugin gave it (field and JSON value unchecked).
#[derive(Debug, Clone)]
pub struct Filter {
    /// Field path.
    pub field: String,
    /// Comparison.
    pub op: Op,
    /// JSON text of the value.
    pub value: String,
}

/// A query as the plugin gave it.
#[derive(Debug, Clone)]
pub struct Query {
    /// Collection.
    pub collection: String,
    /// Filters, all of which must hold.
    pub filters: Vec<Filter>,
    /// Field to order by; none orders by id.
    pub order_by: Option<String>,
    /// Largest first.
    pub descending: bool,
    /// Page size, 1..=1000.
    pub limit: u32,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Collection.
    pub collection: String,
    /// Id.
    pub id: String,
    /// Version, from 1.
    pub version: u64,
    /// JSON object text.
    pub body: String,
}

/// One page of a query.
#[derive(Debug, Clone)]
pub struct Page {
    /// Documents, in order.
    pub documents: Vec<Document>,
    /// Cursor of the next page, when more may follow.
    pub next_cursor: Option<String>,
}

/// A transaction precondition.
#[derive(Debug, Clone)]
pub enum Precondition {
    /// The document does not exist.
    Absent {
        /// Collection.
        collection: String,
        /// Id.
        id: String,
    },
    /// The document exists at this version.
    AtVersion {
        /// Collection.
        collection: String,
        /// Id.
        id: String,
        /// Version.
        version: u64,
    },
    /// Fewer than `below` documents of the collection match the filters.
    CountBelow {
        /// Collection.
        collection: String,
        /// Filters.
        filters: Vec<Filter>,
        /// Bound.
        below: u64,
    },
}

/// A write.
#[derive(Debug, Clone)]
pub enum Write {
    /// Create or replace.
    Put {
        /// Collection.
        collection: String,
        /// Id.
        id: String,
        /// JSON object text.
        body: String,
        /// None: any state; 0: absent; n: at version n.
        expected_version: Option<u64>,
    },
    /// Delete (no error if absent unless a version is expected).
    Delete {
        /// Collection.
        collection: String,
        /// Id.
        id: String,
        /// None: any state; n: at version n (0: absent).
        expected_version: Option<u64>,
    },
}

/// What one write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// New version (0 for a delete).
    pub version: u64,
    /// Whether the document existed before.
    pub existed: bool,
}

// ---------------------------------------------------------------------------------------
// Validation (pure)

/// Checks a collection name: 1-64 characters `[a-z0-9_-]`.
pub fn check_collection(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > 64 {
        return Err(invalid(format!(
            "collection name must be 1 to 64 characters, got {}",
            name.len()
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(invalid(format!(
            "collection name {name:?} may only contain a-z, 0-9, '_' and '-'"
        )));
    }
    Ok(())
}

/// Checks a document id: 1-256 characters, no control characters.
pub fn check_id(id: &str) -> Result<(), StoreError> {
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_ID_CHARS {
        return Err(invalid(format!(
            "document id must be 1 to {MAX_ID_CHARS} characters, got {chars}"
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(invalid("document id must not contain control characters"));
    }
    Ok(())
}

/// Checks a field path and splits it into its segments: `[A-Za-z0-9_]+` joined by dots.
pub fn check_field(field: &str) -> Result<Vec<&str>, StoreError> {
    if field.is_empty() || field.len() > MAX_FIELD_BYTES {
        return Err(invalid(format!(
            "field must be 1 to {MAX_FIELD_BYTES} bytes, got {}",
            field.len()
        )));
    }
    let segments: Vec<&str> = field.split('.').collect();
    for segment in &segments {
        if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(invalid(format!(
                "field {field:?}: each dot-separated segment must be non-empty [A-Za-z0-9_]"
            )));
        }
    }
    Ok(segments)
}

/// Parses a body: a JSON object of at most 1 MiB. Returns its compact text.
pub fn normalize_body(body: &str) -> Result<String, StoreError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid(format!(
            "document is {} bytes; the limit is {MAX_BODY_BYTES}",
            body.len()
        )));
    }
    let value: Value =
        serde_json::from_str(body).map_err(|e| invalid(format!("document is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(invalid("document must be a JSON object"));
    }
    let text = value.to_string();
    if text.len() > MAX_BODY_BYTES {
        return Err(invalid(format!(
            "document is {} bytes; the limit is {MAX_BODY_BYTES}",
            text.len()
        )));
    }
    Ok(text)
}

/// Plugin ids are validated at load (`[a-z][a-z0-9-]*`); checked again before they are
/// written into SQL text.
fn check_plugin(plugin: &str) -> Result<(), StoreError> {
    if plugin.is_empty()
        || !plugin
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(invalid(format!("bad plugin id {plugin:?}")));
    }
    Ok(())
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Text(String),
    Int(i64),
    Real(f64),
}

/// SQL text generation for one backend.
#[derive(Debug, Clone, Copy)]
struct Sql {
    backend: Backend,
}

impl Sql {
    /// The expression of a field, identical in indexes and queries.
    fn field(self, segments: &[&str]) -> String {
        match self.backend {
            Backend::Sqlite => format!("json_extract(body, '$.{}')", segments.join(".")),
            Backend::Postgres => {
                let path: Vec<String> = segments.iter().map(|s| format!("'{s}'")).collect();
                format!("(body->{})", path.join("->"))
            }
        }
    }

    /// The field as text (for the exact prefix check).
    fn field_text(self, segments: &[&str]) -> String {
        match self.backend {
            Backend::Sqlite => self.field(segments),
            Backend::Postgres => format!("(body #>> '{{{}}}')", segments.join(",")),
        }
    }

    fn type_guard(self, segments: &[&str], value: &Value) -> String {
        match self.backend {
            Backend::Sqlite => {
                let t = format!("json_type(body, '$.{}')", segments.join("."));
                match value {
                    Value::Number(_) => format!("{t} IN ('integer', 'real')"),
                    Value::String(_) => format!("{t} = 'text'"),
                    Value::Bool(true) => format!("{t} = 'true'"),
                    Value::Bool(false) => format!("{t} = 'false'"),
                    Value::Null => format!("{t} = 'null'"),
                    Value::Array(_) | Value::Object(_) => "1 = 0".into(),
                }
            }
            Backend::Postgres => {
                let t = format!("jsonb_typeof({})", self.field(segments));
                match value {
                    Value::Number(_) => format!("{t} = 'number'"),
                    Value::String(_) => format!("{t} = 'string'"),
                    Value::Bool(_) => format!("{t} = 'boolean'"),
                    Value::Null => format!("{t} = 'null'"),
                    Value::Array(_) | Value::Object(_) => "1 = 0".into(),
                }
            }
        }
    }

    /// Pushes `value` as a parameter comparable with the field expression; returns its
    /// placeholder.
    fn bind_value(self, value: &Value, args: &mut Vec<Arg>) -> String {
        match self.backend {
            Backend::Sqlite => {
                let arg = match value {
                    Value::Number(n) => match n.as_i64() {
                        Some(i) => Arg::Int(i),
                        None => Arg::Real(n.as_f64().unwrap_or(0.0)),
                    },
                    Value::String(s) => Arg::Text(s.clone()),
                    Value::Bool(b) => Arg::Int(i64::from(*b)),
                    Value::Null => Arg::Text(String::new()),
                    Value::Array(_) | Value::Object(_) => Arg::Text(value.to_string()),
                };
                args.push(arg);
                format!("${}", args.len())
            }
            Backend::Postgres => {
                args.push(Arg::Text(value.to_string()));
                format!("${}::jsonb", args.len())
            }
        }
    }

    fn eq(self, segments: &[&str], value: &Value, args: &mut Vec<Arg>) -> String {
        let guard = self.type_guard(segments, value);
        match (self.backend, value) {
            // Booleans and null are matched by their JSON type alone on SQLite (json_extract
            // turns true into 1 and null into NULL).
            (Backend::Sqlite, Value::Bool(_) | Value::Null) => format!("({guard})"),
            (Backend::Postgres, _) => {
                let p = self.bind_value(value, args);
                format!("({} = {p})", self.field(segments))
            }
            (Backend::Sqlite, _) => {
                let p = self.bind_value(value, args);
                format!("({} = {p} AND {guard})", self.field(segments))
            }
        }
    }

    fn filter(self, filter: &Filter, args: &mut Vec<Arg>) -> Result<String, StoreError> {
        let segments = check_field(&filter.field)?;
        let value: Value = serde_json::from_str(&filter.value).map_err(|e| {
            invalid(format!(
                "filter on {:?}: value is not valid JSON: {e}",
                filter.field
            ))
        })?;
        let field = self.field(&segments);
        let scalar = |v: &Value| !matches!(v, Value::Array(_) | Value::Object(_));
        Ok(match filter.op {
            Op::Eq | Op::Ne => {
                if !scalar(&value) {
                    return Err(invalid(format!(
                        "filter on {:?}: eq/ne compare with a scalar (string, number, boolean, null)",
                        filter.field
                    )));
                }
                let eq = self.eq(&segments, &value, args);
                if filter.op == Op::Eq {
                    eq
                } else {
                    format!("({eq} IS NOT TRUE)")
                }
            }
            Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
                if !matches!(value, Value::Number(_) | Value::String(_)) {
                    return Err(invalid(format!(
                        "filter on {:?}: lt/lte/gt/gte compare with a number or a string",
                        filter.field
                    )));
                }
                let op = match filter.op {
                    Op::Lt => "<",
                    Op::Lte => "<=",
                    Op::Gt => ">",
                    _ => ">=",
                };
                let guard = self.type_guard(&segments, &value);
                let p = self.bind_value(&value, args);
                format!("({field} {op} {p} AND {guard})")
            }
            Op::In => {
                let Value::Array(values) = &value else {
                    return Err(invalid(format!(
                        "filter on {:?}: `in` takes a JSON array",
                        filter.field
                    )));
                };
                if values.len() > MAX_IN_VALUES {
                    return Err(invalid(format!(
                        "filter on {:?}: `in` takes at most {MAX_IN_VALUES} values",
                        filter.field
                    )));
                }
                if values.is_empty() {
                    return Ok("(1 = 0)".into());
                }
                let mut parts = Vec::new();
                for v in values {
                    if !scalar(v) {
                        return Err(invalid(format!(
                            "filter on {:?}: `in` values must be scalars",
                            filter.field
                        )));
                    }
                    parts.push(self.eq(&segments, v, args));
                }
                format!("({})", parts.join(" OR "))
            }
            Op::Prefix => {
                let Value::String(prefix) = &value else {
                    return Err(invalid(format!(
                        "filter on {:?}: `prefix` takes a string",
                        filter.field
                    )));
                };
                let guard = self.type_guard(&segments, &value);
                // A range the index can serve, then the exact check (byte order on SQLite,
                // the database collation on PostgreSQL: C.UTF-8 recommended).
                let lower = self.bind_value(&value, args);
                let mut sql = format!("({field} >= {lower} AND {guard}");
                if let Some(upper) = successor(prefix) {
                    let p = self.bind_value(&Value::String(upper), args);
                    sql.push_str(&format!(" AND {field} < {p}"));
                }
                args.push(Arg::Text(prefix.clone()));
                let n = prefix.chars().count();
                let text = self.field_text(&segments);
                match self.backend {
                    Backend::Sqlite => {
                        sql.push_str(&format!(" AND substr({text}, 1, {n}) = ${})", args.len()))
                    }
                    Backend::Postgres => sql.push_str(&format!(" AND left({text}, {n}) = ${})", args.len())),
                }
                sql
            }
        })
    }

    /// `plugin_id = 'p' AND collection = 'c' AND filters...` (the literals let the planner
    /// match the partial indexes).
    fn where_clause(
        self,
        plugin: &str,
        collection: &str,
        filters: &[Filter],
        args: &mut Vec<Arg>,
    ) -> Result<String, StoreError> {
        check_plugin(plugin)?;
        check_collection(collection)?;
        if filters.len() > MAX_FILTERS {
            return Err(invalid(format!(
                "at most {MAX_FILTERS} filters, got {}",
                filters.len()
            )));
        }
        let mut sql = format!(
            "plugin_id = '{}' AND collection = '{}'",
            plugin.replace('\'', "''"),
            collection.replace('\'', "''")
        );
        for filter in filters {
            sql.push_str(" AND ");
            sql.push_str(&self.filter(filter, args)?);
        }
        Ok(sql)
    }

    fn body_column(self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "body",
            Backend::Postgres => "body::text",
        }
    }

    fn body_param(self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => format!("${n}"),
            Backend::Postgres => format!("${n}::jsonb"),
        }
    }
}

/// The smallest string greater than every string starting with `prefix`, if any.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Follows a field path in a body.
fn lookup<'a>(body: &'a Value, segments: &[&str]) -> Option<&'a Value> {
    segments.iter().try_fold(body, |v, s| v.get(s))
}

/// The position of a document in a query's order: the cursor's content.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Cursor {
    /// Order field (none: by id).
    f: Option<String>,
    /// Descending.
    d: bool,
    /// The order value of the last document; none when it lacks the field.
    v: Option<Value>,
    /// Its id.
    i: String,
}

impl Cursor {
    fn encode(&self) -> String {
        hex::encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(text: &str) -> Result<Cursor, StoreError> {
        let bytes = hex::decode(text).map_err(|_| invalid("cursor is not one this store produced"))?;
        serde_json::from_slice(&bytes).map_err(|_| invalid("cursor is not one this store produced"))
    }
}

/// The SQL order value of a document, as `lookup` + the backend's view of it: `None`
/// where the expression is SQL NULL.
fn order_value(backend: Backend, body: &Value, segments: &[&str]) -> Option<Value> {
    match lookup(body, segments) {
        None => None,
        Some(Value::Null) if backend == Backend::Sqlite => None,
        Some(v) => Some(v.clone()),
    }
}

/// Deterministic index name: `store_idx_` + 24 hex digits of a hash of its definition.
fn index_name(plugin: &str, collection: &str, fields: &[String], unique: bool) -> String {
    let mut hasher = Sha256::new();
    hasher.update(plugin.as_bytes());
    hasher.update([0]);
    hasher.update(collection.as_bytes());
    for f in fields {
        hasher.update([0]);
        hasher.update(f.as_bytes());
    }
    hasher.update([u8::from(unique)]);
    let digest = hasher.finalize();
    format!("store_idx_{}", hex::encode(&digest[..12]))
}

/// Builds a query and binds its arguments.
macro_rules! bound {
    ($kind:ident :: < $($t:ty),+ > ($sql:expr), $args:expr) => {{
        let mut q = sqlx::$kind::<$($t),+>(sqlx::AssertSqlSafe($sql));
        for arg in $args {
            q = match arg {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
                Arg::Real(r) => q.bind(*r),
            };
        }
        q
    }};
}

/// A write validated and ready: the body normalised.
#[derive(Debug)]
struct Prepared {
    collection: String,
    id: String,
    body: Option<String>,
    expected: Option<u64>,
}

fn prepare(write: &Write) -> Result<Prepared, StoreError> {
    Ok(match write {
        Write::Put {
            collection,
            id,
            body,
            expected_version,
        } => {
            check_collection(collection)?;
            check_id(id)?;
            Prepared {
                collection: collection.clone(),
                id: id.clone(),
                body: Some(normalize_body(body)?),
                expected: *expected_version,
            }
        }
        Write::Delete {
            collection,
            id,
            expected_version,
        } => {
            check_collection(collection)?;
            check_id(id)?;
            Prepared {
                collection: collection.clone(),
                id: id.clone(),
                body: None,
                expected: *expected_version,
            }
        }
    })
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The body of a write transaction, for one concrete connection type: lock the usage row,
/// check the preconditions, apply the writes, check the quota, update the usage.
macro_rules! write_transaction {
    ($tx:ident, $sql:expr, $plugin:expr, $quota:expr, $checks:expr, $prepared:expr) => {{
        let sql: Sql = $sql;
        let plugin: &str = $plugin;
        let quota: Quota = $quota;
        // The usage row, created if needed. On PostgreSQL the same statement first tries the
        // plugin's LOCK_MIGRATING lock, shared with its other writes and held exclusively by
        // its migration: refused, the row is left alone (not waited for) and so is the write.
        let free: bool = match sql.backend {
            Backend::Sqlite => {
                sqlx::query(
                    "INSERT INTO store_usage (plugin_id, bytes, documents) VALUES ($1, 0, 0) \
                     ON CONFLICT (plugin_id) DO NOTHING",
                )
                .bind(plugin)
                .execute(&mut *$tx)
                .await?;
                true
            }
            Backend::Postgres => {
                sqlx::query_scalar(
                    "WITH gate AS (SELECT pg_try_advisory_xact_lock_shared($2, $3) AS free), \
                     created AS (INSERT INTO store_usage (plugin_id, bytes, documents) \
                     SELECT $1, 0, 0 FROM gate WHERE free ON CONFLICT (plugin_id) DO NOTHING) \
                     SELECT free FROM gate",
                )
                .bind(plugin)
                .bind(LOCK_MIGRATING)
                .bind(lock_key(plugin))
                .fetch_one(&mut *$tx)
                .await?
            }
        };
        if !free {
            return Err(StoreError::Migrating);
        }
        let lock = match sql.backend {
            Backend::Sqlite => "SELECT bytes, documents FROM store_usage WHERE plugin_id = $1",
            Backend::Postgres => "SELECT bytes, documents FROM store_usage WHERE plugin_id = $1 FOR UPDATE",
        };
        let (start_bytes, start_docs): (i64, i64) =
            sqlx::query_as(lock).bind(plugin).fetch_one(&mut *$tx).await?;
        let (mut bytes, mut docs) = (start_bytes, start_docs);

        for check in $checks {
            match check {
                Check::Version {
                    collection,
                    id,
                    version,
                } => {
                    let current: Option<i64> = sqlx::query_scalar(
                        "SELECT version FROM documents WHERE plugin_id = $1 AND collection = $2 AND id = $3",
                    )
                    .bind(plugin)
                    .bind(collection)
                    .bind(id)
                    .fetch_optional(&mut *$tx)
                    .await?;
                    if current.map_or(0, to_u64) != *version {
                        return Err(StoreError::Conflict);
                    }
                }
                Check::CountBelow {
                    sql: text,
                    args,
                    below,
                } => {
                    let n: i64 = bound!(query_scalar::<_, i64>(text.clone()), args)
                        .fetch_one(&mut *$tx)
                        .await?;
                    if to_u64(n) >= *below {
                        return Err(StoreError::Conflict);
                    }
                }
            }
        }

        let upsert = format!(
            "INSERT INTO documents (plugin_id, collection, id, version, body, size, updated_at) \
             VALUES ($1, $2, $3, $4, {}, $6, $7) \
             ON CONFLICT (plugin_id, collection, id) DO UPDATE SET version = excluded.version, \
             body = excluded.body, size = excluded.size, updated_at = excluded.updated_at",
            sql.body_param(5)
        );
        let now = now_ms();
        let mut written = Vec::new();
        for p in $prepared {
            let current: Option<(i64, i64)> = sqlx::query_as(
                "SELECT version, size FROM documents WHERE plugin_id = $1 AND collection = $2 AND id = $3",
            )
            .bind(plugin)
            .bind(&p.collection)
            .bind(&p.id)
            .fetch_optional(&mut *$tx)
            .await?;
            let current_version = current.map_or(0, |(v, _)| to_u64(v));
            if let Some(expected) = p.expected
                && expected != current_version
            {
                return Err(StoreError::Conflict);
            }
            let old_size = current.map_or(0, |(_, s)| s);
            match &p.body {
                Some(body) => {
                    let size = i64::try_from(body.len()).unwrap_or(i64::MAX);
                    let version = current_version + 1;
                    sqlx::query(sqlx::AssertSqlSafe(upsert.clone()))
                        .bind(plugin)
                        .bind(&p.collection)
                        .bind(&p.id)
                        .bind(to_i64(version))
                        .bind(body)
                        .bind(size)
                        .bind(now)
                        .execute(&mut *$tx)
                        .await?;
                    bytes += size - old_size;
                    if current.is_none() {
                        docs += 1;
                    }
                    written.push(Written {
                        version,
                        existed: current.is_some(),
                    });
                }
                None => {
                    if current.is_some() {
                        sqlx::query(
                            "DELETE FROM documents WHERE plugin_id = $1 AND collection = $2 AND id = $3",
                        )
                        .bind(plugin)
                        .bind(&p.collection)
                        .bind(&p.id)
                        .execute(&mut *$tx)
                        .await?;
                        bytes -= old_size;
                        docs -= 1;
                    }
                    written.push(Written {
                        version: 0,
                        existed: current.is_some(),
                    });
                }
            }
        }
        // Going over is refused only when the transaction grows the usage: a plugin over
        // its quota (lowered by the operator) can still shrink.
        if (bytes > start_bytes && to_u64(bytes) > quota.max_bytes)
            || (docs > start_docs && to_u64(docs) > quota.max_documents)
        {
            return Err(StoreError::QuotaExceeded);
        }
        if bytes != start_bytes || docs != start_docs {
            sqlx::query("UPDATE store_usage SET bytes = $2, documents = $3 WHERE plugin_id = $1")
                .bind(plugin)
                .bind(bytes)
                .bind(docs)
                .execute(&mut *$tx)
                .await?;
        }
        $tx.commit().await?;
        Ok(written)
    }};
}

/// A declared index, from validated names only: its name and SQL.
#[derive(Debug, Clone)]
pub(crate) struct IndexDef {
    plugin: String,
    collection: String,
    name: String,
    /// The field expressions: the key of a unique index.
    keys: Vec<String>,
    unique: bool,
    /// The fields, as the JSON array recorded in `store_indexes`.
    fields_json: String,
}

/// An index declared in a [`Scope`] on PostgreSQL, built once the scope has committed.
#[derive(Debug, Clone)]
pub(crate) struct PendingIndex {
    def: IndexDef,
    declared_by: String,
}

impl IndexDef {
    fn new(
        sql: Sql,
        plugin: &str,
        collection: &str,
        fields: &[String],
        unique: bool,
    ) -> Result<IndexDef, StoreError> {
        check_plugin(plugin)?;
        check_collection(collection)?;
        if fields.is_empty() || fields.len() > MAX_INDEX_FIELDS {
            return Err(invalid(format!(
                "an index has 1 to {MAX_INDEX_FIELDS} fields, got {}",
                fields.len()
            )));
        }
        let mut keys = Vec::new();
        for f in fields {
            keys.push(sql.field(&check_field(f)?));
        }
        Ok(IndexDef {
            plugin: plugin.to_owned(),
            collection: collection.to_owned(),
            name: index_name(plugin, collection, fields, unique),
            keys,
            unique,
            fields_json: serde_json::to_string(fields).unwrap_or_default(),
        })
    }

    /// `plugin_id = 'p' AND collection = 'c'`: the partial predicate, as the queries write it.
    fn predicate(&self) -> String {
        format!(
            "plugin_id = '{}' AND collection = '{}'",
            self.plugin.replace('\'', "''"),
            self.collection.replace('\'', "''")
        )
    }

    fn create(&self, concurrently: bool) -> String {
        let mut columns = self.keys.clone();
        // A non-unique index ends with the id: equality filters then come out in id order
        // (the default order, and the tie-breaker), so the planner need not choose between
        // filtering with this index and ordering with the primary key.
        if !self.unique {
            columns.push("id".to_owned());
        }
        format!(
            "CREATE {}INDEX {}IF NOT EXISTS \"{}\" ON documents ({}) WHERE {}",
            if self.unique { "UNIQUE " } else { "" },
            if concurrently { "CONCURRENTLY " } else { "" },
            self.name,
            columns.join(", "),
            self.predicate(),
        )
    }

    /// A query returning a row when two documents share a key, as a unique index sees it
    /// (a key with a SQL NULL part never conflicts).
    fn duplicates(&self) -> String {
        let present: Vec<String> = self.keys.iter().map(|k| format!("{k} IS NOT NULL")).collect();
        format!(
            "SELECT 1 FROM documents WHERE {} AND {} GROUP BY {} HAVING COUNT(*) > 1 LIMIT 1",
            self.predicate(),
            present.join(" AND "),
            self.keys.join(", ")
        )
    }
}

/// The `(name, declared_by)` rows of indexes last declared by none of the versions `keep`
/// (an index recorded before versions were, `None`, is declared by none).
fn undeclared(rows: Vec<(String, Option<String>)>, keep: &[&str]) -> Vec<(String, Option<String>)> {
    rows.into_iter()
        .filter(|(name, by)| is_index_name(name) && !by.as_deref().is_some_and(|v| keep.contains(&v)))
        .collect()
}

/// Whether `name` is one [`index_name`] makes (names read back from the database are
/// checked before they are written into SQL text).
fn is_index_name(name: &str) -> bool {
    name.strip_prefix("store_idx_").is_some_and(|h| {
        h.len() == 24
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// What the database says of one declared index.
#[derive(Debug)]
struct IndexState {
    /// Recorded in `store_indexes`.
    declared: bool,
    /// The version that declared it last.
    declared_by: Option<String>,
    /// The physical index: absent, or valid (`false`: an interrupted concurrent build).
    built: Option<bool>,
    /// Indexes the plugin has declared.
    total: i64,
}

type StateRow = (bool, Option<String>, Option<bool>, i64);

impl IndexState {
    fn from_row((declared, declared_by, built, total): StateRow) -> IndexState {
        IndexState {
            declared,
            declared_by,
            built,
            total,
        }
    }

    async fn sqlite(conn: &mut SqliteConnection, def: &IndexDef) -> Result<IndexState, sqlx::Error> {
        let row: StateRow = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM store_indexes WHERE plugin_id = $1 AND name = $2), \
             (SELECT declared_by FROM store_indexes WHERE plugin_id = $1 AND name = $2), \
             (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = $2), \
             (SELECT COUNT(*) FROM store_indexes WHERE plugin_id = $1)",
        )
        .bind(&def.plugin)
        .bind(&def.name)
        .fetch_one(&mut *conn)
        .await?;
        Ok(IndexState::from_row(row))
    }

    async fn postgres(conn: &mut PgConnection, def: &IndexDef) -> Result<IndexState, sqlx::Error> {
        let row: StateRow = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM store_indexes WHERE plugin_id = $1 AND name = $2), \
             (SELECT declared_by FROM store_indexes WHERE plugin_id = $1 AND name = $2), \
             (SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($2)), \
             (SELECT COUNT(*) FROM store_indexes WHERE plugin_id = $1)",
        )
        .bind(&def.plugin)
        .bind(&def.name)
        .fetch_one(&mut *conn)
        .await?;
        Ok(IndexState::from_row(row))
    }

    /// Refuses a new declaration past the per-plugin cap.
    fn check_cap(&self) -> Result<(), StoreError> {
        if !self.declared && self.total >= MAX_INDEXES {
            return Err(invalid(format!(
                "a plugin may declare at most {MAX_INDEXES} indexes"
            )));
        }
        Ok(())
    }
}

/// Records the declaration (or who declared it last).
const RECORD_INDEX: &str = "INSERT INTO store_indexes (plugin_id, collection, name, fields, is_unique, created_at, declared_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (plugin_id, name) DO UPDATE SET declared_by = excluded.declared_by";

/// The SQLite build, in the caller's transaction (or savepoint): the index and its record
/// together.
async fn sqlite_declare(
    conn: &mut SqliteConnection,
    def: &IndexDef,
    declared_by: &str,
) -> Result<(), StoreError> {
    let state = IndexState::sqlite(conn, def).await?;
    state.check_cap()?;
    if state.built.is_none() {
        sqlx::query(sqlx::AssertSqlSafe(def.create(false)))
            .execute(&mut *conn)
            .await?;
    }
    record_index(conn, def, declared_by).await
}

macro_rules! record_index_on {
    ($conn:expr, $def:expr, $declared_by:expr) => {
        sqlx::query(RECORD_INDEX)
            .bind(&$def.plugin)
            .bind(&$def.collection)
            .bind(&$def.name)
            .bind(&$def.fields_json)
            .bind($def.unique)
            .bind(now_ms())
            .bind($declared_by)
            .execute($conn)
            .await
            .map(|_| ())
    };
}

async fn record_index(
    conn: &mut SqliteConnection,
    def: &IndexDef,
    declared_by: &str,
) -> Result<(), StoreError> {
    Ok(record_index_on!(&mut *conn, def, declared_by)?)
}

/// A declaration in a PostgreSQL scope: recorded in the scope, built after it commits
/// (returned as pending) unless it is built already. A unique index is checked against the
/// documents the scope sees, and checked again before the scope commits
/// ([`Scope::check_indexes`]).
async fn pg_declare_in_scope(
    conn: &mut PgConnection,
    def: &IndexDef,
    declared_by: &str,
    scope: &Scope,
) -> Result<Option<PendingIndex>, StoreError> {
    let state = IndexState::postgres(conn, def).await?;
    let pending_here = scope
        .pending_indexes
        .lock()
        .map(|list| list.iter().any(|p| p.def.name == def.name))
        .unwrap_or(false);
    state.check_cap()?;
    if def.unique && !pending_here && state.built != Some(true) {
        let duplicate: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(def.duplicates()))
            .fetch_optional(&mut *conn)
            .await?;
        if duplicate.is_some() {
            return Err(StoreError::Conflict);
        }
    }
    record_index_on!(&mut *conn, def, declared_by)?;
    Ok(
        (state.built != Some(true) && !pending_here).then(|| PendingIndex {
            def: def.clone(),
            declared_by: declared_by.to_owned(),
        }),
    )
}

/// A PostgreSQL connection holding a plugin's [`LOCK_INDEXES`] session lock. Only one per
/// process exists at a time, so concurrent first declarations wait here without a pooled
/// connection each. The connection is closed rather than returned to the pool: if this is
/// dropped before [`IndexLock::release`] (a call cancelled at its deadline), closing it is
/// what releases the lock.
struct IndexLock {
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    plugin: String,
    _one: tokio::sync::MutexGuard<'static, ()>,
}

static INDEX_BUILDS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl IndexLock {
    async fn acquire(pool: &PgPool, plugin: &str) -> Result<IndexLock, sqlx::Error> {
        let one = INDEX_BUILDS.lock().await;
        let mut conn = pool.acquire().await?;
        conn.close_on_drop();
        sqlx::query("SELECT pg_advisory_lock($1, $2)")
            .bind(LOCK_INDEXES)
            .bind(lock_key(plugin))
            .execute(&mut *conn)
            .await?;
        Ok(IndexLock {
            conn,
            plugin: plugin.to_owned(),
            _one: one,
        })
    }

    fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    async fn release(mut self) {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(LOCK_INDEXES)
            .bind(lock_key(&self.plugin))
            .execute(&mut *self.conn)
            .await;
        if let Err(e) = unlocked {
            tracing::warn!(plugin = %self.plugin, error = %e, "cannot release the index lock; closing its connection does");
        }
    }
}

/// The PostgreSQL build outside any transaction: under the plugin's index lock, look
/// again, drop an invalid leftover, `CREATE INDEX CONCURRENTLY`, then record it.
async fn pg_build_index(pool: &PgPool, def: &IndexDef, declared_by: &str) -> Result<(), StoreError> {
    let mut held = IndexLock::acquire(pool, &def.plugin).await?;
    let built = pg_build_locked(held.conn(), def, declared_by).await;
    held.release().await;
    built
}

async fn pg_build_locked(
    conn: &mut PgConnection,
    def: &IndexDef,
    declared_by: &str,
) -> Result<(), StoreError> {
    let state = IndexState::postgres(conn, def).await?;
    state.check_cap()?;
    if state.built == Some(false) {
        drop_invalid(conn, def).await?;
    }
    if state.built != Some(true) {
        let created = sqlx::query(sqlx::AssertSqlSafe(def.create(true)))
            .execute(&mut *conn)
            .await;
        if let Err(e) = created {
            // A failed concurrent build leaves an invalid index behind.
            let _ = drop_invalid(conn, def).await;
            let error = StoreError::from(e);
            if matches!(error, StoreError::Conflict) && state.declared {
                // A declaration recorded by a migration whose documents (or writes since)
                // break uniqueness: it never held.
                sqlx::query("DELETE FROM store_indexes WHERE plugin_id = $1 AND name = $2")
                    .bind(&def.plugin)
                    .bind(&def.name)
                    .execute(&mut *conn)
                    .await?;
            }
            return Err(error);
        }
    }
    Ok(record_index_on!(&mut *conn, def, declared_by)?)
}

async fn drop_invalid(conn: &mut PgConnection, def: &IndexDef) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP INDEX CONCURRENTLY IF EXISTS \"{}\"",
        def.name
    )))
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

impl Scope {
    /// Before the scope commits: every unique index declared in it still holds over the
    /// documents it wrote since (PostgreSQL builds them after the commit). `Err` names the
    /// index that would be violated.
    pub async fn check_indexes(&self) -> Result<(), String> {
        let unique: Vec<IndexDef> = match self.pending_indexes.lock() {
            Ok(list) => list
                .iter()
                .filter(|p| p.def.unique)
                .map(|p| p.def.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        for def in unique {
            let found: Result<Option<i32>, sqlx::Error> = match self.connection().await {
                Ok(ScopedConnection::Postgres(mut conn)) => {
                    sqlx::query_scalar(sqlx::AssertSqlSafe(def.duplicates()))
                        .fetch_optional(&mut *conn)
                        .await
                }
                Ok(ScopedConnection::Sqlite(_)) => Ok(None),
                Err(e) => Err(e),
            };
            match found {
                Ok(None) => {}
                Ok(Some(_)) => {
                    return Err(format!(
                        "it declared a unique index on {}({}) and then wrote documents that break it",
                        def.collection, def.fields_json
                    ));
                }
                Err(e) => return Err(format!("cannot check the index on {}: {e}", def.collection)),
            }
        }
        Ok(())
    }

    /// After the scope committed: builds the indexes it declared (PostgreSQL), one after
    /// the other; returns those that failed, with why. A failed build is built again by
    /// the plugin's next `ensure-index` of it (a unique one over duplicates is forgotten and
    /// answers `conflict`).
    pub async fn build_indexes(&self) -> Vec<(String, StoreError)> {
        let pending = match self.pending_indexes.lock() {
            Ok(mut list) => std::mem::take(&mut *list),
            Err(_) => Vec::new(),
        };
        let Database::Postgres(pool) = self.pool() else {
            return Vec::new();
        };
        let mut failed = Vec::new();
        for p in pending {
            if let Err(e) = pg_build_index(&pool, &p.def, &p.declared_by).await {
                failed.push((format!("{}({})", p.def.collection, p.def.fields_json), e));
            }
        }
        failed
    }
}

/// A precondition compiled to what the transaction runs.
#[derive(Debug)]
enum Check {
    Version {
        collection: String,
        id: String,
        /// 0: absent.
        version: u64,
    },
    CountBelow {
        sql: String,
        args: Vec<Arg>,
        below: u64,
    },
}

impl Database {
    fn sql(&self) -> Sql {
        Sql {
            backend: self.backend(),
        }
    }

    /// Reads a document.
    pub async fn store_get(
        &self,
        plugin: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<Document>, StoreError> {
        check_collection(collection)?;
        check_id(id)?;
        let text = format!(
            "SELECT version, {} FROM documents WHERE plugin_id = $1 AND collection = $2 AND id = $3",
            self.sql().body_column()
        );
        let row: Option<(i64, String)> = super::on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(text))
                .bind(plugin)
                .bind(collection)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(version, body)| Document {
            collection: collection.to_owned(),
            id: id.to_owned(),
            version: to_u64(version),
            body,
        }))
    }

    /// Creates or replaces a document (see [`Write::Put`]); returns its new version.
    pub async fn store_put(
        &self,
        plugin: &str,
        quota: Quota,
        collection: &str,
        id: &str,
        body: &str,
        expected_version: Option<u64>,
    ) -> Result<u64, StoreError> {
        let write = Write::Put {
            collection: collection.to_owned(),
            id: id.to_owned(),
            body: body.to_owned(),
            expected_version,
        };
        let done = self.store_transaction(plugin, quota, &[], &[write]).await?;
        Ok(done.first().map_or(0, |w| w.version))
    }

    /// Deletes a document; returns whether it existed.
    pub async fn store_delete(
        &self,
        plugin: &str,
        quota: Quota,
        collection: &str,
        id: &str,
        expected_version: Option<u64>,
    ) -> Result<bool, StoreError> {
        let write = Write::Delete {
            collection: collection.to_owned(),
            id: id.to_owned(),
            expected_version,
        };
        let done = self.store_transaction(plugin, quota, &[], &[write]).await?;
        Ok(done.first().is_some_and(|w| w.existed))
    }

    /// Checks the preconditions, then applies the writes, all or nothing.
    pub async fn store_transaction(
        &self,
        plugin: &str,
        quota: Quota,
        preconditions: &[Precondition],
        writes: &[Write],
    ) -> Result<Vec<Written>, StoreError> {
        check_plugin(plugin)?;
        if writes.len() > MAX_WRITES {
            return Err(invalid(format!(
                "a transaction has at most {MAX_WRITES} writes, got {}",
                writes.len()
            )));
        }
        if preconditions.len() > MAX_PRECONDITIONS {
            return Err(invalid(format!(
                "a transaction has at most {MAX_PRECONDITIONS} preconditions, got {}",
                preconditions.len()
            )));
        }
        let sql = self.sql();
        let mut checks = Vec::with_capacity(preconditions.len());
        for p in preconditions {
            checks.push(match p {
                Precondition::Absent { collection, id } => {
                    check_collection(collection)?;
                    check_id(id)?;
                    Check::Version {
                        collection: collection.clone(),
                        id: id.clone(),
                        version: 0,
                    }
                }
                Precondition::AtVersion {
                    collection,
                    id,
                    version,
                } => {
                    check_collection(collection)?;
                    check_id(id)?;
                    Check::Version {
                        collection: collection.clone(),
                        id: id.clone(),
                        version: *version,
                    }
                }
                Precondition::CountBelow {
                    collection,
                    filters,
                    below,
                } => {
                    let mut args = Vec::new();
                    let clause = sql.where_clause(plugin, collection, filters, &mut args)?;
                    Check::CountBelow {
                        sql: format!("SELECT COUNT(*) FROM documents WHERE {clause}"),
                        args,
                        below: *below,
                    }
                }
            });
        }
        let prepared = writes.iter().map(prepare).collect::<Result<Vec<_>, _>>()?;
        match self {
            Database::Sqlite(pool) => {
                // IMMEDIATE takes the write lock at BEGIN: writers queue instead of failing
                // with SQLITE_BUSY when upgrading a read transaction.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                write_transaction!(tx, sql, plugin, quota, &checks, &prepared)
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                write_transaction!(tx, sql, plugin, quota, &checks, &prepared)
            }
            // A savepoint of the scope's transaction: all or nothing within it, kept only if
            // the scope commits.
            Database::Scoped(scope) => match scope.connection().await? {
                ScopedConnection::Sqlite(mut conn) => {
                    let mut tx = conn.begin().await?;
                    write_transaction!(tx, sql, plugin, quota, &checks, &prepared)
                }
                ScopedConnection::Postgres(mut conn) => {
                    let mut tx = conn.begin().await?;
                    write_transaction!(tx, sql, plugin, quota, &checks, &prepared)
                }
            },
        }
    }

    /// Runs a query: one page.
    pub async fn store_find(&self, plugin: &str, query: &Query) -> Result<Page, StoreError> {
        let (text, args) = self.find_sql(plugin, query)?;
        let segments = query.order_by.as_deref().map(check_field).transpose()?;
        let mut rows: Vec<(String, i64, String)> = super::on_pool!(self, pool => {
            bound!(query_as::<_, (String, i64, String)>(text), &args).fetch_all(pool).await
        })?;
        let more = rows.len() > query.limit as usize;
        rows.truncate(query.limit as usize);
        let next_cursor = match rows.last() {
            Some((id, _, body)) if more => {
                let v = match &segments {
                    Some(segments) => {
                        let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                        order_value(self.backend(), &body, segments)
                    }
                    None => None,
                };
                Some(
                    Cursor {
                        f: query.order_by.clone(),
                        d: query.descending,
                        v,
                        i: id.clone(),
                    }
                    .encode(),
                )
            }
            _ => None,
        };
        Ok(Page {
            documents: rows
                .into_iter()
                .map(|(id, version, body)| Document {
                    collection: query.collection.clone(),
                    id,
                    version: to_u64(version),
                    body,
                })
                .collect(),
            next_cursor,
        })
    }

    /// Counts the documents matching the filters.
    pub async fn store_count(
        &self,
        plugin: &str,
        collection: &str,
        filters: &[Filter],
    ) -> Result<u64, StoreError> {
        let mut args = Vec::new();
        let clause = self.sql().where_clause(plugin, collection, filters, &mut args)?;
        let text = format!("SELECT COUNT(*) FROM documents WHERE {clause}");
        let n: i64 = super::on_pool!(self, pool => {
            bound!(query_scalar::<_, i64>(text), &args).fetch_one(pool).await
        })?;
        Ok(to_u64(n))
    }

    /// Declares an index (idempotent): a real expression index, partial on the plugin and
    /// the collection, recorded in `store_indexes` as declared by `declared_by` (the
    /// plugin's version). Unique over existing duplicates is a conflict.
    ///
    /// An index already built and recorded costs one read (and one write, the first time a
    /// new version declares it). Otherwise, the build:
    /// - SQLite: `CREATE INDEX` and the record in one `BEGIN IMMEDIATE` transaction (the
    ///   single writer serialises builds);
    /// - PostgreSQL: one build at a time per process (each holds a connection), under the
    ///   plugin's [`LOCK_INDEXES`] session lock across processes, with `CREATE INDEX
    ///   CONCURRENTLY`: no lock on the plugin's rows, so its writes go on while it builds. An
    ///   index left invalid by an interrupted build is dropped and built again. Two sessions
    ///   racing to create one index (a unique violation on `pg_class`, once answered 409)
    ///   cannot happen: the second finds the first's index when it gets the lock.
    /// - In a [`Scope`] (a `migrate` call): SQLite builds in the scope's transaction;
    ///   PostgreSQL records the declaration in the scope (checking a unique index against
    ///   what the scope wrote) and builds after the scope commits, since a concurrent build
    ///   would wait for the scope to end and a plain `CREATE INDEX` would block every
    ///   plugin's writes until it did.
    pub async fn store_ensure_index(
        &self,
        plugin: &str,
        collection: &str,
        fields: &[String],
        unique: bool,
        declared_by: &str,
    ) -> Result<(), StoreError> {
        let def = IndexDef::new(self.sql(), plugin, collection, fields, unique)?;
        match self {
            Database::Sqlite(pool) => {
                if self.index_ready(&def, declared_by).await? {
                    return Ok(());
                }
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                sqlite_declare(&mut tx, &def, declared_by).await?;
                tx.commit().await?;
                Ok(())
            }
            Database::Postgres(pool) => {
                if self.index_ready(&def, declared_by).await? {
                    return Ok(());
                }
                pg_build_index(pool, &def, declared_by).await
            }
            Database::Scoped(scope) => match scope.connection().await? {
                ScopedConnection::Sqlite(mut conn) => {
                    let mut savepoint = conn.begin().await?;
                    sqlite_declare(&mut savepoint, &def, declared_by).await?;
                    savepoint.commit().await?;
                    Ok(())
                }
                ScopedConnection::Postgres(mut conn) => {
                    let mut savepoint = conn.begin().await?;
                    let build = pg_declare_in_scope(&mut savepoint, &def, declared_by, scope).await?;
                    savepoint.commit().await?;
                    if let Some(pending) = build
                        && let Ok(mut list) = scope.pending_indexes.lock()
                    {
                        list.push(pending);
                    }
                    Ok(())
                }
            },
        }
    }

    /// The fast path: whether the index is recorded and built; records `declared_by` if
    /// another version declared it last.
    async fn index_ready(&self, def: &IndexDef, declared_by: &str) -> Result<bool, StoreError> {
        let state = match self {
            Database::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                IndexState::sqlite(&mut conn, def).await?
            }
            Database::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                IndexState::postgres(&mut conn, def).await?
            }
            Database::Scoped(_) => return Ok(false),
        };
        if !(state.declared && state.built == Some(true)) {
            return Ok(false);
        }
        if state.declared_by.as_deref() != Some(declared_by) {
            // PostgreSQL: a row locked by a migration in progress is skipped, not waited for
            // (the migration records its own version, or the next call records this one).
            let touch = match self.backend() {
                Backend::Sqlite => {
                    "UPDATE store_indexes SET declared_by = $3 WHERE plugin_id = $1 AND name = $2"
                }
                Backend::Postgres => {
                    "UPDATE store_indexes SET declared_by = $3 WHERE (plugin_id, name) IN \
                     (SELECT plugin_id, name FROM store_indexes WHERE plugin_id = $1 AND name = $2 \
                     FOR UPDATE SKIP LOCKED)"
                }
            };
            super::on_pool!(self, pool => {
                sqlx::query(touch)
                    .bind(&def.plugin)
                    .bind(&def.name)
                    .bind(declared_by)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })?;
        }
        Ok(true)
    }

    /// Drops the plugin's indexes whose last declaration came from none of the versions
    /// `keep` (an upgrade keeps those of the version it replaces and of the new one; a purge
    /// keeps none); returns their names. `DROP INDEX CONCURRENTLY` on PostgreSQL, under the
    /// plugin's index lock; the physical index goes first, so an interruption leaves a
    /// record without an index (built again by the next `ensure-index`, or dropped by the
    /// next sweep), never an index nobody records.
    pub async fn store_drop_undeclared_indexes(
        &self,
        plugin: &str,
        keep: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        check_plugin(plugin)?;
        let undeclared = |rows| undeclared(rows, keep);
        let list = "SELECT name, declared_by FROM store_indexes WHERE plugin_id = $1 ORDER BY name";
        let forget = "DELETE FROM store_indexes WHERE plugin_id = $1 AND name = $2 \
                      AND (declared_by = $3 OR (declared_by IS NULL AND $3 IS NULL))";
        match self {
            Database::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let rows = sqlx::query_as(list).bind(plugin).fetch_all(&mut *tx).await?;
                let dropped = undeclared(rows);
                for (name, by) in &dropped {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS \"{name}\"")))
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(forget)
                        .bind(plugin)
                        .bind(name)
                        .bind(by)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(dropped.into_iter().map(|(name, _)| name).collect())
            }
            Database::Postgres(pool) => {
                let mut held = IndexLock::acquire(pool, plugin).await?;
                let conn = held.conn();
                let rows = sqlx::query_as(list).bind(plugin).fetch_all(&mut *conn).await?;
                let dropped = undeclared(rows);
                for (name, by) in &dropped {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP INDEX CONCURRENTLY IF EXISTS \"{name}\""
                    )))
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(forget)
                        .bind(plugin)
                        .bind(name)
                        .bind(by)
                        .execute(&mut *conn)
                        .await?;
                }
                held.release().await;
                Ok(dropped.into_iter().map(|(name, _)| name).collect())
            }
            Database::Scoped(_) => Err(StoreError::Db(DbError::Scope("indexes are dropped on the pool"))),
        }
    }

    /// The SQL text and arguments of a query page (`store_find` runs it, `store_explain`
    /// shows its plan).
    fn find_sql(&self, plugin: &str, query: &Query) -> Result<(String, Vec<Arg>), StoreError> {
        if query.limit == 0 || query.limit > MAX_LIMIT {
            return Err(invalid(format!(
                "limit must be 1 to {MAX_LIMIT}, got {}",
                query.limit
            )));
        }
        let sql = self.sql();
        let mut args = Vec::new();
        let mut clause = sql.where_clause(plugin, &query.collection, &query.filters, &mut args)?;
        let segments = query.order_by.as_deref().map(check_field).transpose()?;
        let cursor = query.cursor.as_deref().map(Cursor::decode).transpose()?;
        if let Some(c) = &cursor
            && (c.f != query.order_by || c.d != query.descending)
        {
            return Err(invalid("cursor belongs to a query with another order"));
        }
        let (dir, cmp) = if query.descending {
            ("DESC", "<")
        } else {
            ("ASC", ">")
        };
        let order = match &segments {
            None => {
                if let Some(c) = &cursor {
                    args.push(Arg::Text(c.i.clone()));
                    clause.push_str(&format!(" AND id {cmp} ${}", args.len()));
                }
                format!("id {dir}")
            }
            Some(segments) => {
                let field = sql.field(segments);
                if let Some(c) = &cursor {
                    args.push(Arg::Text(c.i.clone()));
                    let id = format!("${}", args.len());
                    // Missing values (SQL NULL) sort last ascending, first descending, as
                    // PostgreSQL does by default; spelled out for SQLite.
                    let after = match (&c.v, query.descending) {
                        (Some(v), false) => {
                            let p = sql.bind_value(v, &mut args);
                            format!("({field} > {p} OR ({field} = {p} AND id > {id}) OR {field} IS NULL)")
                        }
                        (Some(v), true) => {
                            let p = sql.bind_value(v, &mut args);
                            format!("({field} < {p} OR ({field} = {p} AND id < {id}))")
                        }
                        (None, false) => format!("({field} IS NULL AND id > {id})"),
                        (None, true) => format!("({field} IS NOT NULL OR id < {id})"),
                    };
                    clause.push_str(" AND ");
                    clause.push_str(&after);
                }
                let nulls = if query.descending {
                    "NULLS FIRST"
                } else {
                    "NULLS LAST"
                };
                format!("{field} {dir} {nulls}, id {dir}")
            }
        };
        let text = format!(
            "SELECT id, version, {} FROM documents WHERE {clause} ORDER BY {order} LIMIT {}",
            sql.body_column(),
            query.limit + 1
        );
        Ok((text, args))
    }

    /// The plan the database chooses for a query (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on
    /// PostgreSQL), one line per row: for tests and `docs/benchmarks.md`.
    pub async fn store_explain(&self, plugin: &str, query: &Query) -> Result<String, StoreError> {
        let (select, args) = self.find_sql(plugin, query)?;
        let lines: Vec<String> = match self {
            Database::Sqlite(pool) => {
                let rows: Vec<(i64, i64, i64, String)> = bound!(
                    query_as::<_, (i64, i64, i64, String)>(format!("EXPLAIN QUERY PLAN {select}")),
                    &args
                )
                .fetch_all(pool)
                .await?;
                rows.into_iter().map(|r| r.3).collect()
            }
            Database::Postgres(pool) => {
                bound!(query_scalar::<_, String>(format!("EXPLAIN {select}")), &args)
                    .fetch_all(pool)
                    .await?
            }
            Database::Scoped(scope) => return Box::pin(scope.pool().store_explain(plugin, query)).await,
        };
        Ok(lines.join("\n"))
    }

    /// The plugin's usage: (bytes, documents).
    pub async fn store_usage(&self, plugin: &str) -> Result<(u64, u64), StoreError> {
        let row: Option<(i64, i64)> = super::on_pool!(self, pool => {
            sqlx::query_as("SELECT bytes, documents FROM store_usage WHERE plugin_id = $1")
                .bind(plugin)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map_or((0, 0), |(b, d)| (to_u64(b), to_u64(d))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_collection("reports_2024-x").is_ok());
        assert!(check_collection("").is_err());
        assert!(check_collection("Reports").is_err());
        assert!(check_collection("a'b").is_err());
        assert!(check_id("a/b c é").is_ok());
        assert!(check_id("a\nb").is_err());
        assert!(check_id(&"x".repeat(257)).is_err());
        assert_eq!(check_field("address.city").ok(), Some(vec!["address", "city"]));
        for bad in ["", "a..b", "a.", "a'b", "a-b", "$.x", "a b"] {
            assert!(check_field(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_are_objects_within_the_cap() {
        assert_eq!(
            normalize_body(r#"{ "a" : 1 }"#).ok().as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert!(normalize_body("[1]").is_err());
        assert!(normalize_body("{").is_err());
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert!(normalize_body(&big).is_err());
    }

    #[test]
    fn successor_of_prefix() {
        assert_eq!(successor("abc").as_deref(), Some("abd"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10FFFF}"), None);
        assert_eq!(successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }

    #[test]
    fn field_expressions_match_the_backend() {
        let lite = Sql {
            backend: Backend::Sqlite,
        };
        let pg = Sql {
            backend: Backend::Postgres,
        };
        assert_eq!(lite.field(&["a", "b"]), "json_extract(body, '$.a.b')");
        assert_eq!(pg.field(&["a", "b"]), "(body->'a'->'b')");
        let mut args = Vec::new();
        let f = Filter {
            field: "n".into(),
            op: Op::Gt,
            value: "3".into(),
        };
        assert_eq!(
            pg.filter(&f, &mut args).ok().as_deref(),
            Some("((body->'n') > $1::jsonb AND jsonb_typeof((body->'n')) = 'number')")
        );
        assert_eq!(args, vec![Arg::Text("3".into())]);
        let bad = Filter {
            field: "n".into(),
            op: Op::In,
            value: "3".into(),
        };
        assert!(pg.filter(&bad, &mut args).is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            f: Some("n".into()),
            d: true,
            v: Some(Value::from(3)),
            i: "x".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).ok(), Some(c));
        assert!(Cursor::decode("zz").is_err());
    }

    #[test]
    fn index_sql_is_partial_and_concurrent_on_request() {
        let pg = Sql {
            backend: Backend::Postgres,
        };
        let def = IndexDef::new(pg, "p", "c", &["a.b".into()], false).expect("def");
        let plain = def.create(false);
        assert!(
            plain.starts_with("CREATE INDEX IF NOT EXISTS \"store_idx_"),
            "{plain}"
        );
        assert!(
            plain.ends_with("ON documents ((body->'a'->'b'), id) WHERE plugin_id = 'p' AND collection = 'c'"),
            "{plain}"
        );
        assert!(
            def.create(true)
                .starts_with("CREATE INDEX CONCURRENTLY IF NOT EXISTS")
        );
        let unique = IndexDef::new(pg, "p", "c", &["x".into(), "y".into()], true).expect("def");
        assert!(
            unique.create(false).contains("((body->'x'), (body->'y')) WHERE"),
            "{}",
            unique.create(false)
        );
        assert_eq!(
            unique.duplicates(),
            "SELECT 1 FROM documents WHERE plugin_id = 'p' AND collection = 'c' AND (body->'x') IS NOT NULL \
             AND (body->'y') IS NOT NULL GROUP BY (body->'x'), (body->'y') HAVING COUNT(*) > 1 LIMIT 1"
        );
        assert!(IndexDef::new(pg, "p", "c", &[], false).is_err());
        assert!(IndexDef::new(pg, "p", "c", &["a'b".into()], false).is_err());
        assert!(IndexDef::new(pg, "p'", "c", &["a".into()], false).is_err());
    }

    #[test]
    fn indexes_declared_by_neither_version_are_the_ones_dropped() {
        let name = |f: &str| index_name("p", "c", &[f.to_owned()], false);
        let rows = vec![
            (name("a"), Some("1.0.0".to_owned())),
            (name("b"), Some("1.1.0".to_owned())),
            (name("c"), Some("0.9.0".to_owned())),
            (name("d"), None),
            ("documents_pkey".to_owned(), Some("0.1.0".to_owned())),
        ];
        let dropped: Vec<String> = undeclared(rows.clone(), &["1.0.0", "1.1.0"])
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(dropped, [name("c"), name("d")]);
        // A purge keeps nothing (but never names what this store did not make).
        assert_eq!(undeclared(rows, &[]).len(), 4);
    }

    #[test]
    fn only_index_names_read_back_reach_sql() {
        assert!(is_index_name(&index_name("p", "c", &["x".into()], true)));
        for bad in [
            "store_idx_",
            "store_idx_0123456789abcdef0123456\"",
            "documents_pkey",
            "store_idx_0123456789ABCDEF01234567",
        ] {
            assert!(!is_index_name(bad), "{bad}");
        }
    }

    #[test]
    fn index_names_are_deterministic() {
        let a = index_name("p", "c", &["x".into()], false);
        assert_eq!(a, index_name("p", "c", &["x".into()], false));
        assert_ne!(a, index_name("p", "c", &["x".into()], true));
        assert_eq!(a.len(), "store_idx_".len() + 24);
    }
}
