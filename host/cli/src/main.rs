//! The `lutetia` binary.

fn main() -> std::process::ExitCode {
    lutetia::main()
}
