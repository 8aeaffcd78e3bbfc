//! The `files` service (being written).
