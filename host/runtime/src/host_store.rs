//! `lutetia:plugin/store`: JSON documents private to each plugin.
//!
//! Every function checks the grant first, then hands the plugin's arguments to
//! `db::store`, which validates them (names, sizes, caps) and runs the queries with the
//! plugin id taken from the call's context: a plugin can only ever name its own documents.

use super::bindings::lutetia::plugin::store::{
    Comparison, Document, Filter, Host, Precondition, Query, QueryPage, Write,
};
use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;
use lutetia_db::store::{self as db, Quota, StoreError};
use lutetia_services::metrics::Service;

impl HostState {
    /// The quota when the plugin was granted the store, `denied` otherwise.
    fn store_granted(&self, operation: &str) -> Result<Quota, Error> {
        match &self.plugin.grants.store {
            Some(cap) => Ok(Quota {
                max_bytes: cap.max_bytes,
                max_documents: cap.max_documents,
            }),
            None => {
                tracing::warn!(plugin = %self.plugin.id, operation, "denied: store capability not granted");
                Err(Error::Denied)
            }
        }
    }

    fn store_error(&self, operation: &str, error: StoreError) -> Error {
        match error {
            StoreError::Conflict => Error::Conflict,
            StoreError::QuotaExceeded => {
                tracing::info!(plugin = %self.plugin.id, operation, "store quota exceeded");
                Error::QuotaExceeded
            }
            StoreError::Invalid(why) => Error::Invalid(why),
            StoreError::Migrating => {
                tracing::info!(plugin = %self.plugin.id, operation, "store write refused: an upgrade is migrating the plugin's data");
                Error::Unavailable("an upgrade is migrating this plugin's data; retry shortly".into())
            }
            StoreError::Db(e) => {
                tracing::error!(plugin = %self.plugin.id, operation, error = %e, "store storage error");
                Error::Unavailable("storage temporarily unavailable".into())
            }
        }
    }
}

fn op(c: Comparison) -> db::Op {
    match c {
        Comparison::Eq => db::Op::Eq,
        Comparison::Ne => db::Op::Ne,
        Comparison::Lt => db::Op::Lt,
        Comparison::Lte => db::Op::Lte,
        Comparison::Gt => db::Op::Gt,
        Comparison::Gte => db::Op::Gte,
        Comparison::In => db::Op::In,
        Comparison::Prefix => db::Op::Prefix,
    }
}

fn filters(list: Vec<Filter>) -> Vec<db::Filter> {
    list.into_iter()
        .map(|f| db::Filter {
            field: f.field,
            op: op(f.op),
            value: f.value,
        })
        .collect()
}

fn document(d: db::Document) -> Document {
    Document {
        collection: d.collection,
        id: d.id,
        version: d.version,
        body: d.body,
    }
}

impl Host for HostState {
    async fn get(&mut self, collection: String, id: String) -> Result<Option<Document>, Error> {
        let state = &mut *self;
        let answer = async move {
            state.store_granted("get")?;
            match state.db.store_get(&state.plugin.id, &collection, &id).await {
                Ok(doc) => Ok(doc.map(document)),
                Err(e) => Err(state.store_error("get", e)),
            }
        }
        .await;
        self.counted(Service::Store, answer)
    }

    async fn put(
        &mut self,
        collection: String,
        id: String,
        body: String,
        expected_version: Option<u64>,
    ) -> Result<u64, Error> {
        let state = &mut *self;
        let answer = async move {
            let quota = state.store_granted("put")?;
            let done = state
                .db
                .store_put(&state.plugin.id, quota, &collection, &id, &body, expected_version)
                .await;
            done.map_err(|e| state.store_error("put", e))
        }
        .await;
        self.counted(Service::Store, answer)
    }

    async fn delete(
        &mut self,
        collection: String,
        id: String,
        expected_version: Option<u64>,
    ) -> Result<bool, Error> {
        let state = &mut *self;
        let answer = async move {
            let quota = state.store_granted("delete")?;
            let done = state
                .db
                .store_delete(&state.plugin.id, quota, &collection, &id, expected_version)
                .await;
            done.map_err(|e| state.store_error("delete", e))
        }
        .await;
        self.counted(Service::Store, answer)
    }

    async fn find(&mut self, q: Query) -> Result<QueryPage, Error> {
        let state = &mut *self;
        let answer = async move {
            state.store_granted("find")?;
            let query = db::Query {
                collection: q.collection,
                filters: filters(q.filters),
                order_by: q.order_by,
                descending: q.descending,
                limit: q.limit,
                cursor: q.cursor,
            };
            match state.db.store_find(&state.plugin.id, &query).await {
                Ok(page) => Ok(QueryPage {
                    documents: page.documents.into_iter().map(document).collect(),
                    next_cursor: page.next_cursor,
                }),
                Err(e) => Err(state.store_error("find", e)),
            }
        }
        .await;
        self.counted(Service::Store, answer)
    }

    async fn count(&mut self, collection: String, filters_: Vec<Filter>) -> Result<u64, Error> {
        let state = &mut *self;
        let answer = async move {
            state.store_granted("count")?;
            let done = state
                .db
                .store_count(&state.plugin.id, &collection, &filters(filters_))
                .await;
            done.map_err(|e| state.store_error("count", e))
        }
        .await;
        self.counted(Service::Store, answer)
    }

    async fn ensure_index(
        &mut self,
        collection: String,
        fields: Vec<String>,
        unique: bool,
    ) -> Result<(), Error> {
        let state = &mut *self;
        let answer = async move {
            state.store_granted("ensure-index")?;
            let done = state
                .db
                .store_ensure_index(
                    &state.plugin.id,
                    &collection,
                    &fields,
                    unique,
                    &state.plugin.version,
                )
                .await;
            done.map_err(|e| state.store_error("ensure-index", e))
        }
        .await;
        self.counted(Service::Store, answer)
    }

    async fn transaction(
        &mut self,
        preconditions: Vec<Precondition>,
        writes: Vec<Write>,
    ) -> Result<Vec<u64>, Error> {
        let state = &mut *self;
        let answer = async move {
            let quota = state.store_granted("transaction")?;
            let preconditions: Vec<db::Precondition> = preconditions
                .into_iter()
                .map(|p| match p {
                    Precondition::Absent(r) => db::Precondition::Absent {
                        collection: r.collection,
                        id: r.id,
                    },
                    Precondition::AtVersion((r, version)) => db::Precondition::AtVersion {
                        collection: r.collection,
                        id: r.id,
                        version,
                    },
                    Precondition::CountBelow((collection, list, below)) => db::Precondition::CountBelow {
                        collection,
                        filters: filters(list),
                        below,
                    },
                })
                .collect();
            let writes: Vec<db::Write> = writes
                .into_iter()
                .map(|w| match w {
                    Write::Put(p) => db::Write::Put {
                        collection: p.collection,
                        id: p.id,
                        body: p.body,
                        expected_version: p.expected_version,
                    },
                    Write::Delete(r) => db::Write::Delete {
                        collection: r.collection,
                        id: r.id,
                        expected_version: None,
                    },
                })
                .collect();
            let done = state
                .db
                .store_transaction(&state.plugin.id, quota, &preconditions, &writes)
                .await;
            match done {
                Ok(written) => Ok(written.into_iter().map(|w| w.version).collect()),
                Err(e) => Err(state.store_error("transaction", e)),
            }
        }
        .await;
        self.counted(Service::Store, answer)
    }
}
