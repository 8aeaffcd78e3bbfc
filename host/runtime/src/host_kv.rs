//! `lutetia:plugin/kv`: a key-value store private to each plugin, persisted in the database.
//!
//! Every function checks the grant first, then the sizes, then reaches the database with
//! the calling plugin's id: a plugin can only ever name its own keys. Writes are charged to
//! the plugin's quota (keys, bytes of keys and values) in the same transaction: a write
//! that does not fit answers `quota-exceeded` and changes nothing.

use super::bindings::lutetia::plugin::kv::Host;
use super::bindings::lutetia::plugin::types::Error;
use super::state::HostState;
use lutetia_db::DbError;
use lutetia_db::kv::{Increment, KvError};
use lutetia_model::manifest::KvCapability;
use lutetia_services::metrics::Service;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most keys returned by one `list-keys`.
pub const MAX_LIST: u32 = 1000;

impl HostState {
    /// The plugin's quota when it was granted the key-value store, `denied` otherwise.
    fn kv_granted(&self, operation: &str) -> Result<KvCapability, Error> {
        match self.plugin.grants.kv {
            Some(quota) => Ok(quota),
            None => {
                tracing::warn!(plugin = %self.plugin.id, operation, "denied: kv capability not granted");
                Err(Error::Denied)
            }
        }
    }

    fn db_error(&self, error: DbError) -> Error {
        tracing::error!(plugin = %self.plugin.id, error = %error, "kv storage error");
        Error::Unavailable("storage temporarily unavailable".into())
    }

    fn kv_error(&self, operation: &str, error: KvError) -> Error {
        match error {
            KvError::QuotaExceeded(reason) => {
                tracing::info!(plugin = %self.plugin.id, operation, %reason, "kv quota exceeded");
                Error::QuotaExceeded
            }
            KvError::Db(DbError::Contention(_)) => Error::Conflict,
            KvError::Db(e) => self.db_error(e),
        }
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::Invalid("key must not be empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::Invalid(format!(
            "key is {} bytes; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    if key.contains('\0') {
        return Err(Error::Invalid("key must not contain NUL".into()));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::Invalid(format!(
            "value is {} bytes; the limit is {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        let state = &mut *self;
        let answer = async move {
            state.kv_granted("get")?;
            check_key(&key)?;
            state
                .db
                .kv_get(&state.plugin.id, &key)
                .await
                .map_err(|e| state.db_error(e))
        }
        .await;
        self.counted(Service::Kv, answer)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        let state = &mut *self;
        let answer = async move {
            let quota = state.kv_granted("set")?;
            check_key(&key)?;
            check_value(&value)?;
            state
                .db
                .kv_set(&state.plugin.id, quota, &key, &value)
                .await
                .map_err(|e| state.kv_error("set", e))
        }
        .await;
        self.counted(Service::Kv, answer)
    }

    async fn delete(&mut self, key: String) -> Result<bool, Error> {
        let state = &mut *self;
        let answer = async move {
            let quota = state.kv_granted("delete")?;
            check_key(&key)?;
            state
                .db
                .kv_delete(&state.plugin.id, quota, &key)
                .await
                .map_err(|e| state.kv_error("delete", e))
        }
        .await;
        self.counted(Service::Kv, answer)
    }

    async fn increment(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        let state = &mut *self;
        let answer = async move {
            let quota = state.kv_granted("increment")?;
            check_key(&key)?;
            match state.db.kv_increment(&state.plugin.id, quota, &key, delta).await {
                Ok(Increment::Value(n)) => Ok(n),
                Ok(Increment::NotAnInteger) => Err(Error::Invalid(format!(
                    "the value of {key:?} is not a decimal integer"
                ))),
                Ok(Increment::Overflow) => Err(Error::Invalid("the sum overflows a 64-bit integer".into())),
                Err(e) => Err(state.kv_error("increment", e)),
            }
        }
        .await;
        self.counted(Service::Kv, answer)
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> Result<bool, Error> {
        let state = &mut *self;
        let answer = async move {
            let quota = state.kv_granted("compare-and-swap")?;
            check_key(&key)?;
            check_value(&new)?;
            state
                .db
                .kv_compare_and_swap(&state.plugin.id, quota, &key, expected.as_deref(), &new)
                .await
                .map_err(|e| state.kv_error("compare-and-swap", e))
        }
        .await;
        self.counted(Service::Kv, answer)
    }

    async fn list_keys(
        &mut self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        let state = &mut *self;
        let answer = async move {
            state.kv_granted("list-keys")?;
            if prefix.len() > MAX_KEY_BYTES {
                return Err(Error::Invalid("prefix is longer than the longest key".into()));
            }
            let limit = limit.clamp(1, MAX_LIST);
            state
                .db
                .kv_list_keys(&state.plugin.id, &prefix, start_after.as_deref(), limit)
                .await
                .map_err(|e| state.db_error(e))
        }
        .await;
        self.counted(Service::Kv, answer)
    }
}
