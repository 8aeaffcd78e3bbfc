//! The `mail` service (being written).
