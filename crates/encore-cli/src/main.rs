//! The `encore` command. All logic lives in the `encore_cli` library.

fn main() -> std::process::ExitCode {
    encore_cli::main()
}
