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
//!   exact on both backends, and the usage row is updated in the same transaction.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Backend, Database, DbError, now_ms};

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
        sqlx::query(
            "INSERT INTO store_usage (plugin_id, bytes, documents) VALUES ($1, 0, 0) \
             ON CONFLICT (plugin_id) DO NOTHING",
        )
        .bind(plugin)
        .execute(&mut *$tx)
        .await?;
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
    /// the collection. Unique over existing duplicates is a conflict.
    pub async fn store_ensure_index(
        &self,
        plugin: &str,
        collection: &str,
        fields: &[String],
        unique: bool,
    ) -> Result<(), StoreError> {
        check_plugin(plugin)?;
        check_collection(collection)?;
        if fields.is_empty() || fields.len() > MAX_INDEX_FIELDS {
            return Err(invalid(format!(
                "an index has 1 to {MAX_INDEX_FIELDS} fields, got {}",
                fields.len()
            )));
        }
        let sql = self.sql();
        let mut expressions = Vec::new();
        for f in fields {
            expressions.push(sql.field(&check_field(f)?));
        }
        // A non-unique index ends with the id: equality filters then come out in id order
        // (the default order, and the tie-breaker), so the planner need not choose between
        // filtering with this index and ordering with the primary key.
        if !unique {
            expressions.push("id".to_owned());
        }
        let name = index_name(plugin, collection, fields, unique);
        let (known, total): (i64, i64) = super::on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT COALESCE(SUM(CASE WHEN name = $2 THEN 1 ELSE 0 END), 0), COUNT(*) \
                 FROM store_indexes WHERE plugin_id = $1",
            )
            .bind(plugin)
            .bind(&name)
            .fetch_one(pool)
            .await
        })?;
        if known > 0 {
            return Ok(());
        }
        if total >= MAX_INDEXES {
            return Err(invalid(format!(
                "a plugin may declare at most {MAX_INDEXES} indexes"
            )));
        }
        let create = format!(
            "CREATE {}INDEX IF NOT EXISTS \"{name}\" ON documents ({}) \
             WHERE plugin_id = '{}' AND collection = '{}'",
            if unique { "UNIQUE " } else { "" },
            expressions.join(", "),
            plugin.replace('\'', "''"),
            collection.replace('\'', "''"),
        );
        super::on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(create)).execute(pool).await.map(|_| ())
        })?;
        let joined = serde_json::to_string(fields).unwrap_or_default();
        super::on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO store_indexes (plugin_id, collection, name, fields, is_unique, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (plugin_id, name) DO NOTHING",
            )
            .bind(plugin)
            .bind(collection)
            .bind(&name)
            .bind(&joined)
            .bind(unique)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
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
    fn index_names_are_deterministic() {
        let a = index_name("p", "c", &["x".into()], false);
        assert_eq!(a, index_name("p", "c", &["x".into()], false));
        assert_ne!(a, index_name("p", "c", &["x".into()], true));
        assert_eq!(a.len(), "store_idx_".len() + 24);
    }
}
