//! The `store` service (being written).
