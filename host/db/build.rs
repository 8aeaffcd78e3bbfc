//! `sqlx::migrate!` embeds `migrations/` at compile time: rebuild when a migration changes.

fn main() {
    for backend in ["sqlite", "postgres"] {
        println!("cargo:rerun-if-changed=../../migrations/{backend}");
    }
}
