//! The `lutetia` command line, as the integration tests start it.

fn main() -> std::process::ExitCode {
    lutetia::main()
}
