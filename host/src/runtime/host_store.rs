//! `lutetia:plugin/store`: JSON documents private to each plugin.
//!
//! SCAFFOLD: the interface is linked and grant-checked; the storage is being written.

use super::bindings::lutetia::plugin::store::{
    Document, Filter, Host, Precondition, Query, QueryPage, Write,
};
use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;

impl HostState {
    fn store_granted(&self, operation: &str) -> Result<(), Error> {
        if self.plugin.grants.store.is_some() {
            Ok(())
        } else {
            tracing::warn!(plugin = %self.plugin.id, operation, "denied: store capability not granted");
            Err(Error::Denied)
        }
    }
}

fn not_yet() -> Error {
    Error::Unavailable("the document store is not available yet".into())
}

impl Host for HostState {
    async fn get(&mut self, _collection: String, _id: String) -> Result<Option<Document>, Error> {
        self.store_granted("get")?;
        Err(not_yet())
    }

    async fn put(
        &mut self,
        _collection: String,
        _id: String,
        _body: String,
        _expected_version: Option<u64>,
    ) -> Result<u64, Error> {
        self.store_granted("put")?;
        Err(not_yet())
    }

    async fn delete(
        &mut self,
        _collection: String,
        _id: String,
        _expected_version: Option<u64>,
    ) -> Result<bool, Error> {
        self.store_granted("delete")?;
        Err(not_yet())
    }

    async fn find(&mut self, _q: Query) -> Result<QueryPage, Error> {
        self.store_granted("find")?;
        Err(not_yet())
    }

    async fn count(&mut self, _collection: String, _filters: Vec<Filter>) -> Result<u64, Error> {
        self.store_granted("count")?;
        Err(not_yet())
    }

    async fn ensure_index(
        &mut self,
        _collection: String,
        _fields: Vec<String>,
        _unique: bool,
    ) -> Result<(), Error> {
        self.store_granted("ensure-index")?;
        Err(not_yet())
    }

    async fn transaction(
        &mut self,
        _preconditions: Vec<Precondition>,
        _writes: Vec<Write>,
    ) -> Result<Vec<u64>, Error> {
        self.store_granted("transaction")?;
        Err(not_yet())
    }
}
