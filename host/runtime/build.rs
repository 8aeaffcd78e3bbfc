//! `bindgen!` reads `wit/` at compile time: rebuild when the contract changes.

fn main() {
    println!("cargo:rerun-if-changed=../../wit");
}
