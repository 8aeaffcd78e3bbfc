//! The `lutetia` binary.

fn main() -> std::process::ExitCode {
    lutetia::cli::main()
}
